# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Registration of l2vit_mm modules in the OpenMMLab task libraries."""
import importlib

#: The task libraries whose ``MODELS`` registry receives our backbones.
TASK_LIBRARIES = ('mmpretrain', 'mmdet', 'mmseg')


def register_model(module_cls):
    """Register a model class in the ``MODELS`` registry of each library.

    Libraries that are not installed are skipped, so ``import l2vit_mm``
    works with any subset of mmpretrain, mmdet and mmsegmentation.

    Args:
        module_cls (type): The class to register under its own name.

    Returns:
        type: ``module_cls``, so that this works as a class decorator.
    """
    for library in TASK_LIBRARIES:
        try:
            registry = importlib.import_module(f'{library}.registry').MODELS
        except ImportError:
            continue
        registry.register_module(module=module_cls)
    return module_cls


def registered_libraries(name='L2ViT'):
    """List the installed task libraries in which ``name`` is registered.

    Args:
        name (str): A registered class name. Defaults to ``'L2ViT'``.

    Returns:
        list[str]: Library names, in the order of :data:`TASK_LIBRARIES`.
    """
    found = []
    for library in TASK_LIBRARIES:
        try:
            registry = importlib.import_module(f'{library}.registry').MODELS
        except ImportError:
            continue
        if name in registry.module_dict:
            found.append(library)
    return found
