# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The dataset configs under a dataloader's (possibly wrapped) dataset."""


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
