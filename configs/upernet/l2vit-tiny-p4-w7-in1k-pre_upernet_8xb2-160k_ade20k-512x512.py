# UperNet + FCN auxiliary head with an L2ViT-T backbone on ADE20K: the
# authors' mmseg 0.x recipe in mmseg 1.x form. 512x512 crops, 160k iterations,
# total batch 16 (8 GPUs x 2 images), AdamW lr 6e-5, weight decay 0.01 on all
# parameters, linear warm-up over 1500 iterations from 1e-6 x lr, then poly
# (power 1) to 0. SyncBN in the heads (per-process BN where SyncBN cannot
# run). Single-scale whole-image test, as the authors' base config; the
# "-ms-flip" config beside this one tests at 6 scales with flipping.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['l2vit_mm'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
# The authors' ImageNet-1K weights, converted with
# tools/model_converters/l2vit2mmpretrain.py
# (see docs/detection_segmentation.md).
checkpoint = 'checkpoints/l2vit-tiny_in1k.pth'
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='L2ViT',
        arch='tiny',
        # The authors' dense-task models always use window 7.
        window_size=7,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=160000,
        by_epoch=False)
]

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
# The recipe's total batch; `--auto-scale-lr` scales lr 6e-5 linearly.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Multi-scale + flip test (the "-ms-flip" configs) as the authors' mmseg 0.x
# --aug-test: the image resized to fit (2048, 512) x ratio, aspect ratio
# kept, so that ratio 1.0 is the single-scale test. mmseg 1.x's ADE20K base
# resizes the original image by the ratio instead.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(2048 * r), int(512 * r)),
                    keep_ratio=True) for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
