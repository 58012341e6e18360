# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Cut an ImageNet-22K classification head down to ImageNet-1K classes."""
import os
import os.path as osp
from collections import Counter, OrderedDict

from .l2vit_checkpoint import (CheckpointError, check_l2vit_state_dict,
                               detect_arch, write_checkpoint_atomic)

IN22K_CLASSES = 21841
IN1K_CLASSES = 1000


def read_class_map(path, num_classes=IN1K_CLASSES,
                   num_src_classes=IN22K_CLASSES):
    """Read a class map: line ``i`` holds the 22K index of 1K class ``i``.

    No index may repeat: each target class takes its own source row.

    Args:
        path (str): The map file, e.g. the authors'
            ``l2vit_custom_map22kto1k.txt``.
        num_classes (int): Expected number of lines. Defaults to 1000.
        num_src_classes (int): Size of the source head; every index must be
            below it. Defaults to 21841.

    Returns:
        list[int]: The source index of each target class.
    """
    try:
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError as e:
        raise CheckpointError(f'cannot read class map {path}: {e}') from None
    except UnicodeDecodeError:
        raise CheckpointError(
            f'class map {path} is not a text file') from None
    if len(lines) != num_classes:
        raise CheckpointError(
            f'class map {path} has {len(lines)} entries, expected '
            f'{num_classes} (one 22K index per 1K class)')
    indices = []
    for lineno, line in enumerate(lines, 1):
        if not line.isdigit():
            raise CheckpointError(
                f'class map {path} line {lineno}: {line!r} is not a class '
                'index')
        index = int(line)
        if index >= num_src_classes:
            raise CheckpointError(
                f'class map {path} line {lineno}: index {index} is out of '
                f'range for a {num_src_classes}-way head')
        indices.append(index)
    repeated = sorted(i for i, k in Counter(indices).items() if k > 1)
    if repeated:
        raise CheckpointError(
            f'class map {path} repeats indices '
            f'{", ".join(map(str, repeated[:3]))}'
            f'{", ..." if len(repeated) > 3 else ""}: each class needs '
            'its own source row')
    return indices


def read_class_names(path):
    """Class names in the order of a model's head.

    Args:
        path (str): A data folder whose sub-folders are the classes (the
            order of mmpretrain's ``CustomDataset``/``ImageNet``: sorted
            names), or a text file with one class per line (its first word).

    Returns:
        list[str]: The class names.
    """
    if osp.isdir(path):
        return sorted(entry.name for entry in os.scandir(path)
                      if entry.is_dir())
    try:
        with open(path) as f:
            return [line.split()[0] for line in f if line.strip()]
    except OSError as e:
        raise CheckpointError(
            f'cannot read class names from {path}: {e}') from None
    except UnicodeDecodeError:
        raise CheckpointError(
            f'class names {path} is neither a folder nor a text file'
        ) from None


def class_map_from_names(src_names, dst_names):
    """The class map that takes each target class from the source class of
    the same name.

    Args:
        src_names (list[str]): Classes of the source head, in its order
            (e.g. the 21841 WordNet ids of ImageNet-22K).
        dst_names (list[str]): Classes of the target head, in its order
            (e.g. the 1000 of ImageNet-1K).

    Returns:
        list[int]: The source index of each target class, as
        :func:`read_class_map` returns.
    """
    for names, which in ((src_names, 'source'), (dst_names, 'target')):
        repeated = sorted(n for n, k in Counter(names).items() if k > 1)
        if repeated:
            raise CheckpointError(
                f'{which} classes repeat names: {", ".join(repeated[:3])}')
    index = {name: i for i, name in enumerate(src_names)}
    missing = [name for name in dst_names if name not in index]
    if missing:
        raise CheckpointError(
            f'{len(missing)} target classes are not source classes: '
            f'{", ".join(missing[:3])}{", ..." if len(missing) > 3 else ""}')
    return [index[name] for name in dst_names]


def save_class_map(class_map, path):
    """Write a class map in the format of :func:`read_class_map`.

    Args:
        class_map (list[int]): The source index of each target class.
        path (str): The map file; written whole or not at all.
    """

    def write(tmp):
        with open(tmp, 'w') as f:
            f.writelines(f'{index}\n' for index in class_map)

    write_checkpoint_atomic(path, write)


def cut_head(state_dict, class_map, num_src_classes=IN22K_CLASSES):
    """Keep the rows of ``head.fc`` named by ``class_map``, in its order.

    Args:
        state_dict (dict): An OpenMMLab L2ViT classifier state dict
            (``backbone.*``, ``head.fc.weight``, ``head.fc.bias``); its
            backbone must load strictly into ``L2ViT``.
        class_map (list[int]): Source row of each target class.
        num_src_classes (int): The expected size of the source head.
            Defaults to 21841.

    Returns:
        OrderedDict: The state dict with a ``len(class_map)``-way head.
    """
    if 'head.fc.weight' not in state_dict:
        raise CheckpointError('no classification head (head.fc.weight) in '
                              'the checkpoint')
    rows = state_dict['head.fc.weight'].shape[0]
    if rows != num_src_classes:
        raise CheckpointError(
            f'the head is {rows}-way, expected a {num_src_classes}-way '
            'ImageNet-22K head')
    bias = state_dict.get('head.fc.bias')
    if bias is not None and bias.shape != (rows, ):
        raise CheckpointError(
            f'head.fc.bias has shape {list(bias.shape)}, expected [{rows}] '
            f'for the {rows} rows of head.fc.weight')
    check_l2vit_state_dict(state_dict, detect_arch(state_dict))
    cut = OrderedDict(state_dict)
    for name in ('head.fc.weight', 'head.fc.bias'):
        if name in cut:
            cut[name] = cut[name][class_map].clone()
    return cut
