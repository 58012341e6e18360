# RetinaNet + FPN with an L2ViT-S backbone on COCO, 1x schedule.
_base_ = './retinanet_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py'

checkpoint = 'checkpoints/l2vit-small_in1k.pth'
model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(checkpoint=checkpoint)))
