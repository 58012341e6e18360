# RetinaNet + FPN with an L2ViT-T backbone starting from the authors'
# ImageNet-1K weights, converted with
# tools/model_converters/l2vit2mmpretrain.py
# (see docs/detection_segmentation.md). The FPN takes stages 2-4 (strides
# 8-32) and adds P6/P7 from its input (mmdet's add_extra_convs='on_input').
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
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
        out_indices=(1, 2, 3),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(in_channels=[192, 384, 768], start_level=0))
