# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Registration of l2vit_mm modules in the OpenMMLab task libraries."""
import importlib
import importlib.util
import warnings

#: The task libraries whose ``MODELS`` registry receives our backbones.
TASK_LIBRARIES = ('mmpretrain', 'mmdet', 'mmseg')


def _task_registries():
    """Yield the ``MODELS`` registry of each task library that imports.

    A library that is not installed is skipped. One that is installed but
    fails to import (mmdet and mmseg assert their mmcv version range, for
    instance) is skipped with a warning that names it and the error, so
    that ``import l2vit_mm`` still serves the others.

    Yields:
        tuple[str, Registry]: The library name and its ``MODELS``.
    """
    for library in TASK_LIBRARIES:
        if importlib.util.find_spec(library) is None:
            continue
        try:
            registry = importlib.import_module(f'{library}.registry').MODELS
        except Exception as error:  # any error of a broken install
            warnings.warn(
                f'{library} is installed but cannot be imported '
                f'({type(error).__name__}: {error}); l2vit_mm models are '
                f'not registered in {library}')
            continue
        yield library, registry


def register_model(module_cls):
    """Register a model class in the ``MODELS`` registry of each library.

    Libraries that are not installed are skipped, so ``import l2vit_mm``
    works with any subset of mmpretrain, mmdet and mmsegmentation.

    Args:
        module_cls (type): The class to register under its own name.

    Returns:
        type: ``module_cls``, so that this works as a class decorator.
    """
    for _, registry in _task_registries():
        registry.register_module(module=module_cls)
    return module_cls


def registered_libraries(name='L2ViT'):
    """List the installed task libraries in which ``name`` is registered.

    Args:
        name (str): A registered class name. Defaults to ``'L2ViT'``.

    Returns:
        list[str]: Library names, in the order of :data:`TASK_LIBRARIES`.
    """
    return [
        library for library, registry in _task_registries()
        if name in registry.module_dict
    ]
