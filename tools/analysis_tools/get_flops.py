# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Print parameters and FLOPs of models built from configs.

Parameters are those of the whole model. FLOPs are of the whole model for
classifiers (mmpretrain), of the backbone and the decode head for
segmentors (the model's tensor forward, without the auxiliary head that
only trains: what mmseg's own ``get_flops.py`` counts), and of the
backbone and neck (``extract_feat``) for detectors, as their heads' cost
depends on the number of proposals; the table's last column says which.
A test-time augmentation config (``-ms-flip``) is counted as the model it
wraps, at the single-scale test size.

Example::

    python tools/analysis_tools/get_flops.py \
        configs/_base_/models/l2vit/l2vit-tiny.py --shape 224
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from l2vit_mm.utils import (CfgOptionsAction, find_backbone_model,
                            positive_int)


class _FeatureExtractor(torch.nn.Module):
    """Expose ``extract_feat`` of a detector as ``forward``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.extract_feat(x)


def build_for_counting(cfg):
    """Build the model of a config in eval mode, ready for counting.

    Args:
        cfg (Config): A classification, detection or segmentation config.

    Returns:
        torch.nn.Module: A module whose ``forward`` takes an image batch.
    """
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(tested_model(cfg))
    model.eval()
    if counted_part(cfg) == 'backbone + neck':
        return _FeatureExtractor(model)
    return model


def counted_part(cfg):
    """What the FLOPs of a config's model cover.

    Args:
        cfg (Config): The config.

    Returns:
        str: ``'whole model'`` (a classifier), ``'backbone + decode
        head'`` (a segmentor) or ``'backbone + neck'`` (a detector).
    """
    model = tested_model(cfg)
    if model.get('type') == 'ImageClassifier':
        return 'whole model'
    if 'decode_head' in model:
        return 'backbone + decode head'
    return 'backbone + neck'


def tested_model(cfg):
    """The model config that holds the backbone, inside any test-time
    augmentation wrapper (``module``).

    Args:
        cfg (Config): The config.

    Returns:
        dict: The model config with a ``backbone``.

    Raises:
        ValueError: The config's model has no backbone to count.
    """
    model, _ = find_backbone_model(cfg.get('model'))
    if model is None:
        raise ValueError(
            'no model.backbone (nor one inside a test-time augmentation '
            'wrapper\'s model.module) to count')
    return model


def complexity(cfg, shape):
    """Count the parameters and FLOPs of a config's model.

    Args:
        cfg (Config): The config.
        shape (tuple[int, int]): Input (H, W).

    Returns:
        tuple[int, int]: Number of parameters and FLOPs (multiply-adds).
    """
    model = build_for_counting(cfg)
    in_channels = tested_model(cfg).backbone.get('in_channels', 3)
    with torch.no_grad():
        info = get_model_complexity_info(
            model, input_shape=(in_channels, *shape), show_table=False,
            show_arch=False)
    return info['params'], info['flops']


def format_table(rows):
    """Format complexity rows as a Markdown table.

    Args:
        rows (list[tuple]): ``(config name, (H, W), params, flops,
            part)``, ``part`` as :func:`counted_part` tells.

    Returns:
        str: The table, one line per row after the header.
    """
    lines = ['| config | input | params (M) | FLOPs (G) | FLOPs of |',
             '|---|---|---|---|---|']
    for name, shape, params, flops, part in rows:
        lines.append(f'| {name} | {shape[0]}x{shape[1]} | '
                     f'{params / 1e6:.2f} | {flops / 1e9:.2f} | {part} |')
    return '\n'.join(lines)


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


def default_shape(cfg):
    """The input size that a config tests at, else 224x224.

    The last ``CenterCrop`` or ``Resize`` of the test pipeline decides: a
    crop size, or a resize scale (an int, mmcv's ``(w, h)``, or with
    ``keep_ratio`` the long and short sides, read as a landscape image).
    A config that tests with TTA is read at its single-scale
    ``test_pipeline``.

    Args:
        cfg (Config): The config.

    Returns:
        tuple[int, int]: Input (H, W).
    """
    loader = cfg.get('test_dataloader') or {}
    pipeline = loader.get('dataset', {}).get('pipeline')
    if not pipeline or 'module' in cfg.model:
        pipeline = cfg.get('test_pipeline', [])
    shape = (224, 224)
    for step in pipeline:
        size = None
        if step.get('type') == 'CenterCrop':
            size = step['crop_size']
        elif step.get('type') == 'Resize':
            size = step.get('scale')
        if isinstance(size, int):
            shape = (size, size)
        elif size is not None and step.get('keep_ratio'):
            shape = (min(size), max(size))
        elif size is not None:
            shape = (size[1], size[0])
    return shape


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
