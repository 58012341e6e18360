# Cascade Mask R-CNN + FPN with an L2ViT-T backbone on COCO, 3x schedule
# (36 epochs, lr x0.1 at epochs 27 and 33). Not in the authors' repository:
# this is the standard benchmark of the backbone family (Swin, ConvNeXt), with
# their box heads (4 shared convs + 1 fc with SyncBN, GIoU loss on decoded
# boxes) and the L2ViT detection recipe: AdamW lr 1e-4, weight decay 0.05 on
# all parameters, total batch 16 (8 GPUs x 2 images), multi-scale + crop
# augmentation, no mixed precision.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/schedules/l2vit_adamw_3x_coco.py',
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
        # Not published for Cascade: the Mask R-CNN 3x values.
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]),
    # The three stages differ only in their box-delta scales.
    roi_head=dict(bbox_head=[
        dict(
            type='ConvFCBBoxHead',
            num_shared_convs=4,
            num_shared_fcs=1,
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=stds),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=dict(type='SyncBN', requires_grad=True),
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                     [0.033, 0.033, 0.067, 0.067])
    ]))
