# RetinaNet + FPN with an L2ViT-T backbone on COCO, 3x schedule (36 epochs,
# lr x0.1 at epochs 27 and 33); otherwise as the 1x config.
_base_ = './retinanet_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py'

model = dict(backbone=dict(drop_path_rate=0.2))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]
