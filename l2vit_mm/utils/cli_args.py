# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Command-line flags shared by ``tools/train.py`` and ``tools/test.py``."""
import argparse
import os

from mmengine.config import DictAction


def positive_int(text):
    """An ``argparse`` type: an int of at least 1.

    Args:
        text (str): The argument.

    Returns:
        int: Its value.
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'expected a positive int, got {text!r}')
    return value


def add_runner_args(parser, cfg_options_example):
    """Add ``--cfg-options``, ``--launcher`` and ``--local-rank``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        cfg_options_example (str): An override shown in the help text.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override settings, e.g. {cfg_options_example}')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser, argv=None):
    """Parse the arguments and export ``LOCAL_RANK`` as torch.distributed
    launchers of older torch versions expect.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        argv (list[str], optional): Arguments; ``sys.argv`` when None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
