# mmpretrain's runtime, keeping checkpoints as the authors' code does: the
# best one by validation top-1 (of the EMA weights) and the last three.
_base_ = ['mmpretrain::_base_/default_runtime.py']

default_hooks = dict(
    checkpoint=dict(
        max_keep_ckpts=3,
        save_best='accuracy/top1',
        rule='greater'))
