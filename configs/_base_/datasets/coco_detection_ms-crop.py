# COCO detection (boxes only) with the detection augmentation of the L2ViT
# authors (their mmdet 2.x AutoAugment policy, as Swin's): random flip, then
# one of (a) multi-scale resize, short side 480-800 step 32, long side <= 1333
# or (b) resize to a short side of 400/500/600, random crop of 384-600 pixels,
# then the multi-scale resize of (a). The model's data preprocessor pads the
# batch to a multiple of 32.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

multi_scale_resize = dict(
    type='RandomChoiceResize',
    scales=[(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
            (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
            (800, 1333)],
    keep_ratio=True)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [multi_scale_resize],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(400, 1333), (500, 1333), (600, 1333)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True),
                multi_scale_resize,
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
