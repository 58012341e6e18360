# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Test a checkpoint of an mmpretrain, mmdet or mmseg config.

Example::

    python tools/test.py configs/l2vit/l2vit-tiny_8xb128-acc4_in1k.py \
        checkpoints/l2vit-tiny_in1k.pth
"""
import argparse

from mmengine.config import Config

from l2vit_mm.utils import (add_runner_args, bad_input_exits, build_runner,
                            check_data_paths, check_test_checkpoint,
                            merge_test_args,
                            parse_runner_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump predictions to this file/dir')
    parser.add_argument(
        '--show-dir', help='save visualised predictions to this directory')
    parser.add_argument(
        '--show', action='store_true', help='show predictions in a window')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='seconds each prediction is shown (--show)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_model on its "
        "tta_pipeline (mmpretrain and mmdet: a flip TTA if it has none)")
    add_runner_args(parser, 'test_dataloader.batch_size=4')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    with bad_input_exits():
        cfg = Config.fromfile(args.config)
        cfg = merge_test_args(cfg, args)
        check_data_paths(cfg, splits=('test', ))
        check_test_checkpoint(cfg, args.checkpoint)
    return build_runner(cfg).test()


if __name__ == '__main__':
    main()
