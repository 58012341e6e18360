# Multi-scale + flip test of UperNet with L2ViT-T on ADE20K, as the authors'
# mmseg 0.x --aug-test: mmseg's SegTTAModel averages the predictions with the
# image resized to fit 0.5, 0.75, 1.0, 1.25, 1.5 and 1.75 times the test scale
# (2048x512), each with and without a horizontal flip (tta_pipeline of the
# L2ViT-T config). Test only: train with the config without "-ms-flip" and
# pass its checkpoint to tools/test.py with this one.
_base_ = './l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

model = dict(_delete_=True, type='SegTTAModel', module={{_base_.model}})
test_dataloader = dict(dataset=dict(pipeline={{_base_.tta_pipeline}}))
