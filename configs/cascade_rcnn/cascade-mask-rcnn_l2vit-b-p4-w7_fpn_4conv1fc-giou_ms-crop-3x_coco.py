# Cascade Mask R-CNN + FPN with an L2ViT-B backbone on COCO, 3x schedule.
_base_ = './cascade-mask-rcnn_l2vit-t-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco.py'  # noqa: E501

checkpoint = 'checkpoints/l2vit-base_in1k.pth'
model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
