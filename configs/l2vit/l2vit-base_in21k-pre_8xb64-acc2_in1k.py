# L2ViT-B, ImageNet-22K -> 1K fine-tuning at 224, 30 epochs,
# total batch 1024 = 8 GPUs x 64 x 2 accumulation steps.
# Cut the 22K head first (see README, "22K -> 1K"):
#   python tools/model_converters/l2vit_cut_head_22kto1k.py \
#       checkpoints/l2vit-base_in21k.pth MAP \
#       checkpoints/l2vit-base_in21k-cut1k.pth
# MAP: the authors' map for their 22K checkpoint; for one trained with
# l2vit-base_8xb128_in21k.py, the map that
# tools/model_converters/l2vit_class_map_22kto1k.py writes.
_base_ = ['./l2vit-base_8xb128-acc4_in1k.py']

model = dict(
    # The authors' 22K -> 1K fine-tuning: drop path 0.2.
    backbone=dict(drop_path_rate=0.2),
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/l2vit-base_in21k-cut1k.pth'))

train_dataloader = dict(batch_size=64)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=4e-5, weight_decay=1e-8), accumulative_counts=2)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,  # from 4e-8
        by_epoch=True,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=4e-7,
        by_epoch=True,
        begin=5,
        end=30,
        convert_to_iter_based=True),
]

train_cfg = dict(max_epochs=30)
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, interval=2,
         priority='ABOVE_NORMAL', evaluate_on_origin=True,
         update_buffers=True)
]
auto_scale_lr = dict(base_batch_size=1024)
