_base_ = './l2vit-tiny.py'

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3),  # published for B
    head=dict(in_channels=1024))
