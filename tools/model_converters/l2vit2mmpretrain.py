# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Convert the authors' L2ViT checkpoints to the OpenMMLab layout.

Example::

    python tools/model_converters/l2vit2mmpretrain.py \
        l2vit_tiny.pth checkpoints/l2vit-tiny_in1k.pth
"""
import argparse
import sys
import warnings

with warnings.catch_warnings(record=True):
    # Keep errors to one line: deprecation notices that torch forces out
    # while mmengine imports are not about this tool.
    from l2vit_mm.converters import (CheckpointError, check_output_path,
                                     convert_l2vit, detect_arch,
                                     extract_state_dict,
                                     load_checkpoint_file,
                                     save_checkpoint_atomic)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an L2ViT checkpoint of the authors (ImageNet, '
        'or their mmdet 2.x / mmseg 0.x models) to the OpenMMLab layout.')
    parser.add_argument('src', help='source checkpoint path')
    parser.add_argument('dst', help='destination checkpoint path')
    parser.add_argument(
        '--ema',
        action='store_true',
        help='convert the EMA weights ("model_ema") instead of "model"')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        check_output_path(args.dst, [args.src])
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    try:
        checkpoint = load_checkpoint_file(args.src)
        state_dict = extract_state_dict(checkpoint, use_ema=args.ema)
        arch = detect_arch(state_dict)
        converted = convert_l2vit(state_dict)
    except CheckpointError as e:
        print(f'error: {args.src}: {e}', file=sys.stderr)
        return 1
    name = arch['name'] or 'custom'
    print(f'Detected L2ViT arch: {name} (embed_dims={arch["embed_dims"]}, '
          f'depths={arch["depths"]}, num_heads={arch["num_heads"]})')
    if None in arch['num_heads']:
        print('num_heads None: a stage of one block, whose weights fit any '
              'number of heads; the config gives it')
    groups = {}
    for key in converted:
        group = key.split('.')[0]
        groups[group] = groups.get(group, 0) + 1
    summary = ', '.join(f'{g}: {n}' for g, n in sorted(groups.items()))
    print(f'Converted {len(state_dict)} keys -> {len(converted)} keys '
          f'({summary})')
    meta = dict(arch=arch, source=args.src, ema=args.ema)
    try:
        save_checkpoint_atomic(dict(state_dict=converted, meta=meta),
                               args.dst)
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'Saved to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
