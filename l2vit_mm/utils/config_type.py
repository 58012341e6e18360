# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The class name that a config's ``type`` names."""


def config_type(config):
    """Return the class name of a config's ``type``, without its scope.

    Args:
        config (dict): A config with a ``type`` (a name, possibly scoped as
            ``'mmseg.IoUMetric'``, or a class).

    Returns:
        str: The class name, e.g. ``'IoUMetric'``.
    """
    type_ = config.get('type')
    if isinstance(type_, type):
        return type_.__name__
    return str(type_).rsplit('.', 1)[-1]
