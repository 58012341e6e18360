# L2ViT-B, ImageNet-1K from scratch, 300 epochs: the authors' recipe.
# Total batch 4096 = 8 GPUs x 128 x 4 accumulation steps.
_base_ = [
    '../_base_/models/l2vit/l2vit-base.py',
    '../_base_/datasets/imagenet_bs128_l2vit_224.py',
    '../_base_/schedules/l2vit_bs4096_adamw_300e.py',
    '../_base_/default_runtime.py',
]
