# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Command-line flags shared by ``tools/train.py`` and ``tools/test.py``,
and how the tools report bad input."""
import argparse
import os
from contextlib import contextmanager

import torch
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


def device_name(text):
    """An ``argparse`` type: a torch device name this machine can run on.

    Args:
        text (str): The argument, e.g. ``'cpu'``, ``'cuda:1'``.

    Returns:
        str: ``text``.

    Raises:
        argparse.ArgumentTypeError: The name is malformed (torch's
            message), is neither a CPU nor a CUDA device, names CUDA where
            it is not available, or a GPU index beyond this machine's GPUs.
    """
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if device.type not in ('cpu', 'cuda'):
        raise argparse.ArgumentTypeError(
            f'{text}: the tools run on cpu or cuda devices only')
    if device.type == 'cpu':
        return text
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f'{text}: CUDA is not available')
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise argparse.ArgumentTypeError(
            f'{text}: this machine has {count} CUDA device(s)')
    return text


def cfg_option(text):
    """An ``argparse`` type: a ``KEY=VALUE`` config override, as text.

    Args:
        text (str): The argument.

    Returns:
        str: ``text``.
    """
    if '=' not in text:
        raise argparse.ArgumentTypeError(
            f'expected KEY=VALUE, got {text!r}')
    return text


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that refuses an override without ``=``
    as a usage error naming it (``DictAction`` fails with a traceback)."""

    def __call__(self, parser, namespace, values, option_string=None):
        for kv in values or ():
            try:
                cfg_option(kv)
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentError(self, str(error)) from None
        super().__call__(parser, namespace, values, option_string)


@contextmanager
def bad_input_exits():
    """Exit with ``error: <message>`` (status 1) on a ``FileNotFoundError``
    or ``ValueError`` raised inside, instead of a traceback.

    For the checks a tool runs on its input before it starts working
    (config, data folders, checkpoints, output paths), whose messages name
    the problem. The exception stays the ``SystemExit``'s ``__context__``.
    """
    try:
        yield
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'error: {error}')


def add_runner_args(parser, cfg_options_example):
    """Add ``--cfg-options``, ``--launcher`` and ``--local-rank``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        cfg_options_example (str): An override shown in the help text.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
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
