# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The ``compile`` argument of the L2ViT backbone."""
import inspect

import torch

#: The keyword arguments of ``torch.compile`` that a config may set.
COMPILE_KEYS = tuple(
    name for name, param in inspect.signature(torch.compile).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY)


def compile_options(value):
    """Check the backbone's ``compile`` argument.

    Args:
        value (bool | dict): False (eager), True (``torch.compile``) or a
            dict of ``torch.compile`` keyword arguments (``mode``,
            ``dynamic``, ``fullgraph``, ``backend``, ...).

    Returns:
        dict | None: The keyword arguments for ``torch.compile`` (plain
        dicts, also for a config's ``ConfigDict``), ``dynamic=False``
        unless given, or None for eager. With dynamic shapes compiling the
        backbone did not finish in minutes (torch 2.5.1); with static ones
        each new input shape compiles anew, up to dynamo's cache size
        limit, after which new shapes run eagerly.
    """
    if value is False:
        return None
    if value is True:
        return dict(dynamic=False)
    if not isinstance(value, dict):
        raise TypeError('L2ViT: compile must be a bool or a dict of '
                        f'torch.compile arguments, got {value!r}')
    unknown = sorted(set(value) - set(COMPILE_KEYS))
    if unknown:
        raise ValueError(f'L2ViT: compile has unknown torch.compile '
                         f'arguments {unknown}; known: {list(COMPILE_KEYS)}')
    options = dict(dynamic=False)
    options.update((key, dict(arg) if isinstance(arg, dict) else arg)
                   for key, arg in value.items())
    return options
