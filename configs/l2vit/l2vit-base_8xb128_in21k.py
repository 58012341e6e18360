# L2ViT-B, ImageNet-22K pre-training (21841 classes), 90 epochs,
# total batch 1024 = 8 GPUs x 128.
_base_ = [
    '../_base_/models/l2vit/l2vit-base.py',
    '../_base_/datasets/imagenet_bs128_l2vit_224.py',
    '../_base_/schedules/l2vit_bs4096_adamw_300e.py',
    '../_base_/default_runtime.py',
]

num_classes = 21841
model = dict(
    # The authors' 22K pre-training: drop path 0.2 (0.3 on ImageNet-1K).
    backbone=dict(drop_path_rate=0.2),
    head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

# Folder layout data/imagenet21k/{train,val}/<wnid>/<image>; class indices
# follow the sorted folder names.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='data/imagenet21k',
        data_prefix='train',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='data/imagenet21k',
        data_prefix='val',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3), accumulative_counts=1)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,  # from 1e-6
        by_epoch=True,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=5,
        end=90,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=90, val_interval=10)
# The authors' 22K runs keep no EMA.
custom_hooks = []
auto_scale_lr = dict(base_batch_size=1024)
