# L2ViT-T ImageNet classifier: L2ViT(out_indices=(3, )) -> global average
# pooling -> linear head, which equals the authors' "final norm, average
# pool, linear" (the backbone's norm3 is their final norm).
custom_imports = dict(imports=['l2vit_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='L2ViT',
        arch='tiny',
        # Not published for T: chosen as Swin-T's value (same size class).
        drop_path_rate=0.2,
        out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
    ),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]),
)
