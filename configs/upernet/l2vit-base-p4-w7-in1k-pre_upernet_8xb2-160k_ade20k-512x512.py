# UperNet + FCN auxiliary head with an L2ViT-B backbone on ADE20K, 160k
# iterations at 512x512; otherwise as the L2ViT-T config.
_base_ = './l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

checkpoint = 'checkpoints/l2vit-base_in1k.pth'
model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(checkpoint=checkpoint)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
