# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Parameters and FLOPs of the models that configs build.

Parameters are those of the whole model. FLOPs are of the whole model for
classifiers (mmpretrain), of the backbone and the decode head for
segmentors (the model's tensor forward, without the auxiliary head that
only trains: what mmseg's own ``get_flops.py`` counts), and of the
backbone and neck (``extract_feat``) for detectors, as their heads' cost
depends on the number of proposals. A test-time augmentation config
(``-ms-flip``) is counted as the model it wraps, at the single-scale test
size. ``tools/analysis_tools/get_flops.py`` is the command line.
"""
import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.registry import MODELS, init_default_scope

from .model_checks import find_backbone_model


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
