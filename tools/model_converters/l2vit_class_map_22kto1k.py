# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Write the 22K -> 1K class map of a head trained on class folders.

A 22K head trained with ``configs/l2vit/l2vit-base_8xb128_in21k.py`` has
its classes in the sorted order of the data's class folders, which is not
the order of the authors' 22K checkpoints: their map
(``l2vit_custom_map22kto1k.txt``) is for their checkpoints only. This tool
writes the map for yours, in the same format (line i: the 22K index of 1K
class i), for ``l2vit_cut_head_22kto1k.py``.

Example::

    python tools/model_converters/l2vit_class_map_22kto1k.py \
        data/imagenet21k/train data/imagenet/train work_dirs/map22kto1k.txt
"""
import argparse
import sys
import warnings

with warnings.catch_warnings(record=True):
    # Keep errors to one line (see l2vit2mmpretrain.py).
    from l2vit_mm.converters import (CheckpointError, check_output_path,
                                     class_map_from_names, read_class_names,
                                     save_class_map)
    from l2vit_mm.converters.head_cut import IN1K_CLASSES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src_classes',
        help='the 22K training folder (one sub-folder per class) or a text '
        'file with its classes in the head\'s order, one per line')
    parser.add_argument(
        'dst_classes',
        help='the same for ImageNet-1K (e.g. data/imagenet/train)')
    parser.add_argument('out', help='the class map file to write')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        check_output_path(args.out, [args.src_classes, args.dst_classes])
        dst_names = read_class_names(args.dst_classes)
        if len(dst_names) != IN1K_CLASSES:
            raise CheckpointError(
                f'{args.dst_classes} has {len(dst_names)} classes, expected '
                f'the {IN1K_CLASSES} of ImageNet-1K (a folder with one '
                'sub-folder per class, or a text file with one per line)')
        class_map = class_map_from_names(
            read_class_names(args.src_classes), dst_names)
        save_class_map(class_map, args.out)
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{len(class_map)} classes mapped; saved to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
