# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The task library (mmpretrain, mmdet or mmseg) a config belongs to."""
from ..registry import TASK_LIBRARIES


def get_task_scope(cfg):
    """Return the task library of a config from its ``default_scope``.

    Args:
        cfg (Config): A loaded config.

    Returns:
        str: One of :data:`l2vit_mm.registry.TASK_LIBRARIES`.
    """
    scope = cfg.get('default_scope')
    if scope not in TASK_LIBRARIES:
        raise ValueError(
            f'config default_scope must be one of {list(TASK_LIBRARIES)}, got '
            f'{scope!r}; inherit a base config of mmpretrain, mmdet or mmseg')
    return scope
