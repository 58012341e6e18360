# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Train an mmpretrain, mmdet or mmseg config (chosen by its default_scope).

Example::

    python tools/train.py configs/l2vit/l2vit-tiny_8xb128-acc4_in1k.py
"""
import argparse

from mmengine.config import Config

from l2vit_mm.utils import (add_runner_args, bad_input_exits, build_runner,
                            check_backbone, check_data_paths,
                            merge_train_args, parse_runner_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or without a path from the latest '
        'checkpoint in the work directory')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by actual / base batch size')
    add_runner_args(parser, 'train_cfg.max_epochs=10')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    with bad_input_exits():
        cfg = Config.fromfile(args.config)
        cfg = merge_train_args(cfg, args)
        # The cheap checks first: a pre-trained checkpoint may be large.
        check_data_paths(cfg, splits=('train', 'val'))
        check_backbone(cfg)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
