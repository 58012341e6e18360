# ImageNet-1K at 224 with the authors' augmentation (DeiT/ConvNeXt recipe:
# RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25 in pixel mode,
# bicubic resize 256 -> center crop 224 for testing), 128 images per GPU.
# timm ignores color jitter when RandAugment is on, so there is none here.
# Data: data/imagenet/{train,val}/<class>/<image> (the authors' folder
# layout) or mmpretrain's meta/{train,val}.txt annotation files.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py']

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
