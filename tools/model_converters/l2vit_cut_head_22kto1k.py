# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Cut the 21841-way head of an L2ViT ImageNet-22K checkpoint to 1000 classes.

The source may be the authors' checkpoint or its conversion by
``l2vit2mmpretrain.py``; the result is in the OpenMMLab layout.

Example::

    python tools/model_converters/l2vit_cut_head_22kto1k.py \
        l2vit_base_22k.pth path/to/l2vit_custom_map22kto1k.txt \
        checkpoints/l2vit-base_in21k-cut1k.pth
"""
import argparse
import sys
import warnings

with warnings.catch_warnings(record=True):
    # Keep errors to one line (see l2vit2mmpretrain.py).
    from l2vit_mm.converters import (CheckpointError, check_output_path,
                                     convert_l2vit, cut_head,
                                     extract_state_dict,
                                     load_checkpoint_file, read_class_map,
                                     save_checkpoint_atomic)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='22K checkpoint (authors\' or converted)')
    parser.add_argument(
        'class_map', help='text file: line i = 22K index of 1K class i')
    parser.add_argument('dst', help='destination checkpoint path')
    parser.add_argument(
        '--ema', action='store_true', help='use "model_ema" weights')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        check_output_path(args.dst, [args.src, args.class_map])
        class_map = read_class_map(args.class_map)
        state_dict = extract_state_dict(
            load_checkpoint_file(args.src), use_ema=args.ema)
        if 'head.weight' in state_dict:
            state_dict = convert_l2vit(state_dict)
        cut = cut_head(state_dict, class_map)
        meta = dict(source=args.src, class_map=args.class_map)
        save_checkpoint_atomic(dict(state_dict=cut, meta=meta), args.dst)
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'Cut head 21841 -> {len(class_map)} classes; saved to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
