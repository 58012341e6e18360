# Mask R-CNN + FPN with an L2ViT-T backbone on COCO, 1x schedule (12 epochs):
# the authors' mmdet 2.x recipe in mmdet 3.x form. AdamW lr 1e-4, weight
# decay 0.05 on all parameters, no gradient clipping, no mixed precision,
# total batch 16 (8 GPUs x 2 images), multi-scale + crop augmentation.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance_ms-crop.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['l2vit_mm'], allow_failed_imports=False)

# The authors' ImageNet-1K weights, converted with
# tools/model_converters/l2vit2mmpretrain.py
# (see docs/detection_segmentation.md).
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

# The 1x schedule of mmdet (linear warm-up over 500 iterations, lr x0.1 at
# epochs 8 and 11) with AdamW instead of SGD.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05))
