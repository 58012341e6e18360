# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Checks that the data folders and files a config reads exist.

They run before the runner is built, so that a missing path fails with a
message that names it and leaves no work dir.
"""
import os.path as osp

from .config_type import config_type
from .dataset_configs import dataloader_configs, leaf_datasets
from .task_scope import get_task_scope


#: mmpretrain datasets that read the ``split`` folder when ``data_prefix``
#: is empty.
SPLIT_FOLDER_DATASETS = ('ImageNet', 'ImageNet21k')


def _join_root(root, path):
    """Join a relative path with ``data_root`` as mmengine datasets do."""
    return path if osp.isabs(path) or not root else osp.join(root, path)


def _data_prefixes(dataset):
    """Return the folders a dataset config reads, as the dataset finds them.

    A ``str`` ``data_prefix`` is mmpretrain's image folder (with ``~``
    expanded); a ``dict`` one names folders such as mmdet's ``img`` or
    mmseg's ``img_path`` and ``seg_map_path``. mmpretrain's ImageNet
    datasets read the ``split`` folder when ``data_prefix`` is empty.
    Relative folders are joined with ``data_root``; empty ones are skipped.

    Args:
        dataset (dict): A leaf dataset config.

    Returns:
        list[tuple[str, str]]: ``(name, path)`` of each folder, the name as
        the config gives it, e.g. ``'data_prefix.img'``.
    """
    prefix = dataset.get('data_prefix', '')
    split = dataset.get('split')
    if prefix == '' and split and \
            config_type(dataset) in SPLIT_FOLDER_DATASETS:
        prefixes = {f'data_prefix (split={split!r})': split}
    elif isinstance(prefix, str):
        prefixes = {'data_prefix': osp.expanduser(prefix)}
    elif isinstance(prefix, dict):
        prefixes = {f'data_prefix.{k}': v for k, v in prefix.items()}
    else:
        return []
    root = dataset.get('data_root') or ''
    return [(name, _join_root(root, path)) for name, path in prefixes.items()
            if isinstance(path, str) and path]


def _reads_through_a_backend(dataset):
    """Whether a dataset reads remote or mapped storage: a URL-like
    ``data_root`` (``s3://``, ...) or ``backend_args`` (e.g. petrel's path
    mapping) on the dataset or a transform of its pipeline."""
    transforms = dataset.get('pipeline') or []
    return '://' in (dataset.get('data_root') or '') or any(
        isinstance(part, dict) and part.get('backend_args') is not None
        for part in [dataset, *transforms])


def check_data_paths(cfg, splits=('train', 'val', 'test')):
    """Fail early, naming the path, when a data folder or file is missing.

    Checks each dataset's ``data_root``, the folders of its ``data_prefix``
    (see :func:`_data_prefixes`) and its ``ann_file`` (which mmseg also
    takes as a folder: it then lists the image folder instead). Datasets
    read through a file backend (see :func:`_reads_through_a_backend`) are
    left to it.

    Args:
        cfg (Config): A loaded config.
        splits (Sequence[str]): The dataloaders to check.
    """
    ann_folders = get_task_scope(cfg) == 'mmseg'
    for split, loader in dataloader_configs(cfg):
        if split not in splits:
            continue
        for dataset in leaf_datasets(loader['dataset']):
            if _reads_through_a_backend(dataset):
                continue
            where = f'{split}_dataloader'
            about = f'(dataset {config_type(dataset)}); see README "Data"'
            root = dataset.get('data_root', '') or ''
            if root and not osp.isdir(root):
                raise FileNotFoundError(
                    f'{where}: data root not found: {root!r} {about}')
            for name, path in _data_prefixes(dataset):
                if not osp.isdir(path):
                    raise FileNotFoundError(
                        f'{where}: {name} folder not found: {path!r} {about}')
            ann_file = dataset.get('ann_file', '') or ''
            if ann_file:
                path = _join_root(root, ann_file)
                if not (osp.isfile(path) or ann_folders and osp.isdir(path)):
                    raise FileNotFoundError(
                        f'{where}: annotation file not found: {path!r} '
                        f'{about}')
