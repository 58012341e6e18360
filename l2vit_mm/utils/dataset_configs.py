# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The dataloader and dataset configs of a config."""


def leaf_datasets(dataset):
    """Yield the dataset configs that read data, under any wrappers.

    ``RepeatDataset``-like wrappers hold one ``dataset``, ``ConcatDataset``
    a list of ``datasets``; the leaves are the configs with neither, the
    ones that take a ``pipeline`` and data paths.

    Args:
        dataset (dict): A dataloader's ``dataset`` config.

    Yields:
        dict: Each leaf dataset config (the config itself, not a copy).
    """
    if 'datasets' in dataset:
        for child in dataset['datasets']:
            yield from leaf_datasets(child)
    elif 'dataset' in dataset:
        yield from leaf_datasets(dataset['dataset'])
    else:
        yield dataset


def dataloader_configs(cfg):
    """Yield the dataloader configs a config has.

    Args:
        cfg (Config): A loaded config.

    Yields:
        tuple[str, dict]: ``('train' | 'val' | 'test', dataloader config)``
        for each ``{split}_dataloader`` that is set.
    """
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader is not None:
            yield split, loader
