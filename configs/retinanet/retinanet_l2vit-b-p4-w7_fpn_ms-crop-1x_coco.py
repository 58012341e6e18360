# RetinaNet + FPN with an L2ViT-B backbone on COCO, 1x schedule.
_base_ = './retinanet_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py'

checkpoint = 'checkpoints/l2vit-base_in1k.pth'
model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[256, 512, 1024]))
