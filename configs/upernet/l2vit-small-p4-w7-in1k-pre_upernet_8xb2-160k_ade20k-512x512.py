# UperNet + FCN auxiliary head with an L2ViT-S backbone on ADE20K, 160k
# iterations at 512x512; otherwise as the L2ViT-T config.
_base_ = './l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

checkpoint = 'checkpoints/l2vit-small_in1k.pth'
model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(checkpoint=checkpoint)))
