# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The task library (mmpretrain, mmdet or mmseg) a config belongs to."""

#: The ``default_scope`` values a config may have.
TASK_SCOPES = ('mmpretrain', 'mmdet', 'mmseg')


def get_task_scope(cfg):
    """Return the task library of a config from its ``default_scope``.

    Args:
        cfg (Config): A loaded config.

    Returns:
        str: One of :data:`TASK_SCOPES`.
    """
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(
            f'config default_scope must be one of {list(TASK_SCOPES)}, got '
            f'{scope!r}; inherit a base config of mmpretrain, mmdet or mmseg')
    return scope
