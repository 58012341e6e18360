# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Checks of a config's L2ViT model and of the checkpoints it loads.

They run before a runner is built, so that a bad backbone argument or a
checkpoint that does not fit fails with one message and leaves no work
dir: mmengine loads checkpoints without ``strict`` and would warn and
train or test random weights.
"""
import os.path as osp
import re

import torch
from mmengine.registry import MODELS, DefaultScope

from ..converters import (CheckpointError, detect_arch, extract_state_dict,
                          load_checkpoint_file, state_dict_mismatches)
from ..models import L2ViT
from .task_scope import get_task_scope

#: Backbone keys that a pre-trained checkpoint need not hold: the norms of
#: the stages a dense-task backbone returns start fresh, as the authors'.
FRESH_BACKBONE_KEYS = re.compile(r'norm\d+\.')


def find_backbone_model(model):
    """Find the model config that holds the backbone.

    Args:
        model (dict): ``cfg.model``, possibly a TTA wrapper with ``module``.

    Returns:
        tuple[dict | None, str | None]: The model config with a ``backbone``
        dict and its key in the config (``'model'`` or ``'model.module'``),
        or ``(None, None)``.
    """
    where = 'model'
    while isinstance(model, dict):
        if isinstance(model.get('backbone'), dict):
            return model, where
        model = model.get('module')
        where += '.module'
    return None, None


def local_checkpoint(path):
    """The local file a checkpoint path names, as mmengine reads it.

    Args:
        path (str): A local path or a URL.

    Returns:
        str | None: ``path`` with ``~`` expanded; None for a URL, which
        mmengine fetches and the checks leave to it.
    """
    return None if '://' in path else osp.expanduser(path)


def _pretrained_weights(init_cfg, where, hint):
    """Load the weights that a ``Pretrained`` init_cfg gives its module.

    Args:
        init_cfg (dict | None): The init_cfg of the backbone or the model.
        where (str): Its key in the config, for messages.
        hint (str): What to do when the file is missing.

    Returns:
        tuple[str, dict] | None: The checkpoint path and its state dict,
        with ``init_cfg.prefix`` taken off as mmengine does; None when the
        init_cfg is not ``Pretrained`` or names a URL (fetched by mmengine).
    """
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        return None
    path = init_cfg.get('checkpoint')
    path = local_checkpoint(path) if isinstance(path, str) else None
    if path is None:
        return None
    if not osp.isfile(path):
        raise FileNotFoundError(f'{where}.init_cfg: pre-trained checkpoint '
                                f'not found: {path!r}; {hint}')
    prefix = init_cfg.get('prefix') or ''
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    try:
        state_dict = extract_state_dict(load_checkpoint_file(path))
    except CheckpointError as e:
        raise ValueError(f'{where}.init_cfg: {e}') from None
    state_dict = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not state_dict:
        raise ValueError(f'{where}.init_cfg: no keys of {path} start with '
                         f'{prefix!r}')
    return path, state_dict


def _check_l2vit_arch(state_dict, arch, path, label):
    """Fail unless a state dict holds an L2ViT of the config's arch.

    Args:
        state_dict (dict): Backbone keys, with or without ``backbone.``.
        arch (dict): The config's arch from :meth:`L2ViT.parse_arch`.
        path (str): The checkpoint file, for messages.
        label (str): What gives the checkpoint, for messages (e.g.
            ``'model.backbone.init_cfg'``).
    """
    try:
        found = detect_arch(state_dict)
    except CheckpointError as e:
        raise ValueError(
            f'{label}: {path} is not an L2ViT checkpoint that this '
            f'backbone can load: {e}') from None
    found = {k: found[k] for k in arch}
    # Heads that the weights do not give (None) fit any number.
    heads = [h if f is None else f
             for f, h in zip(found['num_heads'], arch['num_heads'])]
    if dict(found, num_heads=heads) != arch:
        raise ValueError(f'{label}: {path} holds an L2ViT with '
                         f'{found}, but the config builds {arch}')


def _check_classifier_size(state_dict, head, path, label, where):
    """Fail when a checkpoint's classifier does not fit the config's head.

    mmengine skips a weight of another shape with a warning only, which
    would leave the head at its random initialisation.

    Args:
        state_dict (dict): The weights of the whole model.
        head (dict | None): The config's ``head``.
        path (str): The checkpoint file, for messages.
        label (str): What gives the checkpoint, for messages.
        where (str): The model's key in the config, for messages.
    """
    weight = state_dict.get('head.fc.weight')
    if weight is None or weight.dim() != 2 or not isinstance(head, dict):
        return
    expected = (head.get('num_classes'), head.get('in_channels'))
    if not all(isinstance(n, int) for n in expected) or \
            tuple(weight.shape) == expected:
        return
    raise ValueError(
        f'{label}: {path} has a {weight.shape[0]}-class head on '
        f'{weight.shape[1]} channels (head.fc.weight), but {where}.head has '
        f'num_classes={expected[0]}, in_channels={expected[1]}: mmengine '
        'would skip it with a warning and keep a random head; cut a 22K '
        'head with tools/model_converters/l2vit_cut_head_22kto1k.py or set '
        f'{where}.head to the checkpoint\'s size')


def _l2vit_model(cfg):
    """The model config that holds an L2ViT backbone, its key in the
    config and the backbone's arch; ``(None, None, None)`` for other
    backbones."""
    model, where = find_backbone_model(cfg.get('model'))
    if model is None or model['backbone'].get('type') != 'L2ViT':
        return None, None, None
    try:
        arch = L2ViT.parse_arch(model['backbone'].get('arch', 'tiny'))
    except (ValueError, TypeError) as e:
        raise ValueError(f'{where}.backbone: {e}') from None
    return model, where, arch


def _check_heads(state_dict, expected, model, where, path, label):
    """Fail when a checkpoint has no weights for a head of the config's
    model, e.g. a segmentor's checkpoint given to a classifier: mmengine
    would warn and test or train that head from random weights.

    Args:
        state_dict (dict): The weights of the whole model.
        expected (dict): The state dict of the model built from the config
            (:func:`_build_on_meta`); heads without weights in it (such as
            mmpretrain's ``ClsHead``) need none.
        model (dict): The model config.
        where (str): The model's key in the config, for messages.
        path (str): The checkpoint file, for messages.
        label (str): What gives the checkpoint, for messages.
    """
    prefixes = {key.split('.', 1)[0] for key in state_dict}
    weighted = {key.split('.', 1)[0] for key in expected}
    missing = [
        name for name in model
        if name.endswith('head') and name in weighted
        and name not in prefixes
    ]
    if missing:
        raise ValueError(
            f'{label}: {path} has no weights for '
            f'{", ".join(f"{where}.{name}" for name in missing)} (it holds '
            f'{", ".join(sorted(prefixes))}): a checkpoint of another '
            'model, whose missing parts would stay random')


def _build_on_meta(part, where, scope):
    """The state dict of a model part built from its config, on the meta
    device (shapes without memory); its types and arguments are checked on
    the way.

    Args:
        part (dict): A model or backbone config.
        where (str): Its key in the config, for messages.
        scope (str): The config's task library.

    Returns:
        dict: Parameter and buffer names to meta tensors.
    """
    try:
        with DefaultScope.overwrite_default_scope(scope), \
                torch.device('meta'):
            return MODELS.build(part).state_dict()
    except KeyError as e:  # a type that is not registered
        raise ValueError(f'{where}: {e.args[0]}') from None
    except (ValueError, TypeError) as e:
        raise ValueError(f'{where}: {e}') from None


def _check_fits(state_dict, expected, path, label, where, fresh=None):
    """Fail unless a checkpoint holds every weight of the config's model
    (or part) in its shape: mmengine would load the rest with a warning and
    keep those weights random.

    Args:
        state_dict (dict): The checkpoint's weights, with the keys of the
            model (or part) they load into.
        expected (dict): The state dict of the model built from the config
            (:func:`_build_on_meta`).
        path (str): The checkpoint file, for messages.
        label (str): What gives the checkpoint, for messages.
        where (str): The model's (or part's) key in the config.
        fresh (re.Pattern, optional): Keys that may be missing (they start
            from their initialisation). Defaults to None.
    """
    problems = state_dict_mismatches(
        state_dict,
        expected,
        may_miss=lambda k: k.endswith('num_batches_tracked') or bool(
            fresh and fresh.match(k)),
        unexpected=False)
    if problems:
        raise ValueError(
            f'{label}: {path} does not fit {where} ({"; ".join(problems)}):'
            ' mmengine would load the rest and keep these weights random')


def _check_model_weights(state_dict, model, where, arch, path, label,
                         scope):
    """Fail unless a whole-model state dict loads into the config's model:
    ``backbone.`` keys of its L2ViT, weights for each of its heads, a
    classifier of its size, and every weight in its shape (the model is
    built once, on the meta device, for the last three)."""
    if not any(k.startswith('backbone.') for k in state_dict):
        raise ValueError(
            f'{label}: {path} has no "backbone." keys, so it would '
            'load nothing into the model; convert the authors\' checkpoint '
            'with tools/model_converters/l2vit2mmpretrain.py')
    _check_l2vit_arch(state_dict, arch, path, label)
    expected = _build_on_meta(model, where, scope)
    _check_heads(state_dict, expected, model, where, path, label)
    _check_classifier_size(state_dict, model.get('head'), path, label,
                           where)
    _check_fits(state_dict, expected, path, label, where)


def check_test_checkpoint(cfg, path):
    """Fail early when the config's backbone or the checkpoint to test
    does not fit.

    mmengine loads a test checkpoint without ``strict``: an unconverted
    checkpoint of the authors, or one of another L2ViT size or head size,
    would be tested with random weights after a warning.

    Args:
        cfg (Config): The test config (a TTA wrapper is looked through).
        path (str): The checkpoint file (``~`` is expanded, as mmengine
            does) or a URL, which mmengine fetches and is not checked.
    """
    model, where, arch = _l2vit_model(cfg)
    path = local_checkpoint(path)
    if model is None or path is None:
        return
    try:
        state_dict = extract_state_dict(load_checkpoint_file(path))
    except CheckpointError as e:
        raise ValueError(f'checkpoint: {e}') from None
    _check_model_weights(state_dict, model, where, arch, path, 'checkpoint',
                         get_task_scope(cfg))


def check_backbone(cfg):
    """Fail early, with a clear message, on a bad L2ViT backbone config.

    Runs before the runner creates the work dir, so a config with a bad
    backbone argument (the backbone is built on the meta device), a
    missing pre-trained checkpoint or a checkpoint of another backbone
    (or another L2ViT size) leaves no work dir behind. Both a backbone's
    and a model's ``init_cfg=dict(type='Pretrained')`` are checked (the
    22K -> 1K configs load the whole classifier): the checkpoint must hold
    every weight of the part it loads into, in its shape, but the
    ``norm{i}`` of a dense-task backbone, which start fresh; a
    model-level checkpoint must hold ``backbone.`` keys and a
    ``head.fc.weight`` of the config's head size. Backbones of other types
    are not checked.

    Args:
        cfg (Config): A loaded training config (a test checkpoint is
            checked by :func:`check_test_checkpoint`).
    """
    model, where, arch = _l2vit_model(cfg)
    if model is None:
        return
    backbone, scope = model['backbone'], get_task_scope(cfg)
    expected = _build_on_meta(backbone, f'{where}.backbone', scope)
    loaded = _pretrained_weights(
        backbone.get('init_cfg'), f'{where}.backbone',
        'convert the authors\' ImageNet weights with '
        'tools/model_converters/l2vit2mmpretrain.py (see '
        f'docs/detection_segmentation.md) or set {where}.backbone.init_cfg='
        'None to train from scratch')
    if loaded is not None:
        path, state_dict = loaded
        _check_l2vit_arch(state_dict, arch, path,
                          f'{where}.backbone.init_cfg')
        _check_fits(state_dict, expected, path, f'{where}.backbone.init_cfg',
                    f'{where}.backbone', fresh=FRESH_BACKBONE_KEYS)
    loaded = _pretrained_weights(
        model.get('init_cfg'), where,
        'convert the authors\' ImageNet-22K weights and cut their head with '
        'tools/model_converters/l2vit_cut_head_22kto1k.py (see README, '
        f'"ImageNet-22K -> 1K fine-tuning") or set {where}.init_cfg=None')
    if loaded is not None:
        path, state_dict = loaded
        _check_model_weights(state_dict, model, where, arch, path,
                             f'{where}.init_cfg', scope)
