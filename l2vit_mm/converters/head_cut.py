# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Cut an ImageNet-22K classification head down to ImageNet-1K classes."""
from collections import OrderedDict

from .l2vit_checkpoint import (CheckpointError, check_l2vit_state_dict,
                               detect_arch)

IN22K_CLASSES = 21841
IN1K_CLASSES = 1000


def read_class_map(path, num_classes=IN1K_CLASSES,
                   num_src_classes=IN22K_CLASSES):
    """Read a class map: line ``i`` holds the 22K index of 1K class ``i``.

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
    return indices


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
    check_l2vit_state_dict(state_dict, detect_arch(state_dict))
    cut = OrderedDict(state_dict)
    for name in ('head.fc.weight', 'head.fc.bias'):
        if name in cut:
            cut[name] = cut[name][class_map].clone()
    return cut
