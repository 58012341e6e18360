# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Print parameters and FLOPs of models built from configs.

What is counted is :mod:`l2vit_mm.utils.model_complexity`'s: the whole
model of a classifier, the backbone and decode head of a segmentor, the
backbone and neck of a detector; the table's last column says which.

Example::

    python tools/analysis_tools/get_flops.py \
        configs/_base_/models/l2vit/l2vit-tiny.py --shape 224
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config

from l2vit_mm.utils import CfgOptionsAction, positive_int
from l2vit_mm.utils.model_complexity import (complexity, counted_part,
                                             default_shape, format_table,
                                             tested_model)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Get model FLOPs/params')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument(
        '--shape',
        type=positive_int,
        nargs='+',
        default=None,
        help='input H [W]; default: the config\'s test crop or 224')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override settings of every config, e.g. '
        'model.backbone.window_size=12')
    args = parser.parse_args(argv)
    if args.shape and len(args.shape) > 2:
        parser.error(f'--shape takes H [W], got {len(args.shape)} values')
    return args


def load_configs(paths, cfg_options=None):
    """Load every config and find its model, before anything is counted.

    Args:
        paths (list[str]): Config files.
        cfg_options (dict, optional): Overrides for every config.

    Returns:
        list[Config]: The configs, in order.

    Raises:
        SystemExit: A config is missing or has no model with a backbone;
            the message names it.
    """
    cfgs = []
    for path in paths:
        if not osp.isfile(path):
            sys.exit(f'{path}: config file not found')
        try:
            cfg = Config.fromfile(path)
            if cfg_options:
                cfg.merge_from_dict(cfg_options)
            tested_model(cfg)
        except (FileNotFoundError, ValueError) as error:
            sys.exit(f'{path}: {error}')
        cfgs.append(cfg)
    return cfgs


def main(argv=None):
    args = parse_args(argv)
    rows = []
    for path, cfg in zip(args.configs,
                         load_configs(args.configs, args.cfg_options)):
        if args.shape:
            shape = tuple(args.shape * 2)[:2] if len(args.shape) == 1 \
                else tuple(args.shape[:2])
        else:
            shape = default_shape(cfg)
        params, flops = complexity(cfg, shape)
        rows.append((osp.splitext(osp.basename(path))[0], shape, params,
                     flops, counted_part(cfg)))
    print(format_table(rows))


if __name__ == '__main__':
    main()
