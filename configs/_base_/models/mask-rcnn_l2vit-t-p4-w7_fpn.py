# Mask R-CNN + FPN with an L2ViT-T backbone (all four stages) starting from
# the authors' ImageNet-1K weights, converted with
# tools/model_converters/l2vit2mmpretrain.py
# (see docs/detection_segmentation.md).
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['l2vit_mm'], allow_failed_imports=False)

checkpoint = 'checkpoints/l2vit-tiny_in1k.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='L2ViT',
        arch='tiny',
        # The authors' dense-task models always use window 7.
        window_size=7,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))
