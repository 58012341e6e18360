# RetinaNet + FPN with an L2ViT-T backbone on COCO, 1x schedule (12 epochs):
# the authors' mmdet 2.x recipe in mmdet 3.x form. AdamW lr 1e-4, weight
# decay 0.05 on all parameters, no gradient clipping, no mixed precision,
# total batch 16 (8 GPUs x 2 images), multi-scale + crop augmentation.
_base_ = [
    '../_base_/models/retinanet_l2vit-t-p4-w7_fpn.py',
    '../_base_/datasets/coco_detection_ms-crop.py',
    '../_base_/schedules/l2vit_adamw_1x_coco.py',
    'mmdet::_base_/default_runtime.py',
]
