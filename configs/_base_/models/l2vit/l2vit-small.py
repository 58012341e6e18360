_base_ = './l2vit-tiny.py'

model = dict(
    backbone=dict(
        arch='small',
        # Not published for S: chosen as Swin-S's value (same size class).
        drop_path_rate=0.3))
