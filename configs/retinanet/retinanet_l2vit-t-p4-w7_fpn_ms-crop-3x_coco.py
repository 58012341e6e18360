# RetinaNet + FPN with an L2ViT-T backbone on COCO, 3x schedule (36 epochs,
# lr x0.1 at epochs 27 and 33); otherwise as the 1x config.
_base_ = [
    '../_base_/models/retinanet_l2vit-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_detection_ms-crop.py',
    '../_base_/schedules/l2vit_adamw_3x_coco.py',
    'mmdet::_base_/default_runtime.py',
]

model = dict(backbone=dict(drop_path_rate=0.2))
