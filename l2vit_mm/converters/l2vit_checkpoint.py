# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Read the authors' L2ViT checkpoints and map them to the OpenMMLab layout.

The authors' keys (``downsample_layers.*``, ``stages.*``, ``norm.*``,
``head.*``) become ``backbone.*`` keys of :class:`l2vit_mm.L2ViT`, the final
``norm.`` becomes ``backbone.norm{last}.`` and the classifier ``head.``
becomes mmpretrain's ``head.fc.``. Checkpoints of the authors' mmdet 2.x /
mmseg 0.x models already use ``backbone.`` keys; they and the neck and head
keys pass through unchanged. Every result is checked against the keys and
shapes of the ``L2ViT`` it describes, so that it loads with ``strict=True``.
"""
import os.path as osp
import re
from collections import OrderedDict
from contextlib import contextmanager

import torch

from .. import fileio
from ..models.backbones.l2vit import L2ViT

STEM_KEY = 'downsample_layers.0.proj.proj.0.weight'
BLOCK_KEY = re.compile(r'^stages\.(\d+)\.(\d+)\.')
DOWNSAMPLE_KEY = re.compile(r'^downsample_layers\.(\d+)\.')
NORM_KEY = re.compile(r'^norm(\d+)\.')


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or written, or is not an L2ViT
    checkpoint."""


def load_checkpoint_file(path):
    """Load a checkpoint file on the CPU with a clear error on failure.

    Args:
        path (str): Path of a ``torch.save``d file.

    Returns:
        object: The loaded object.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint file not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=False)
    except Exception as e:  # torch raises many types for corrupt files
        raise CheckpointError(
            f'cannot read checkpoint {path} (truncated or not a torch '
            f'checkpoint): {type(e).__name__}: {e}') from None


def extract_state_dict(checkpoint, use_ema=False):
    """Pick the weights out of a loaded checkpoint.

    Args:
        checkpoint (dict): The authors' dict with ``model`` and/or
            ``model_ema``, an OpenMMLab dict with ``state_dict``, or a bare
            state dict.
        use_ema (bool): Take ``model_ema`` instead of ``model``.
            Defaults to False.

    Returns:
        OrderedDict: The state dict.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'expected a dict checkpoint, got {type(checkpoint).__name__}')
    if use_ema:
        if 'model_ema' not in checkpoint:
            raise CheckpointError(
                'the EMA weights ("model_ema") were asked for but the '
                'checkpoint has only '
                f'{sorted(k for k in checkpoint if isinstance(k, str))[:8]}')
        state_dict = checkpoint['model_ema']
    elif 'model' in checkpoint:
        state_dict = checkpoint['model']
    elif 'state_dict' in checkpoint:
        state_dict = checkpoint['state_dict']
    elif 'model_ema' in checkpoint:
        state_dict = checkpoint['model_ema']
    else:
        state_dict = checkpoint
    if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and torch.is_tensor(v)
            for k, v in state_dict.items()):
        raise CheckpointError('the checkpoint holds no state dict of tensors')
    return OrderedDict(state_dict)


def backbone_weights(state_dict):
    """The ``backbone.`` entries of an OpenMMLab state dict, without the
    prefix: the weights of a bare :class:`l2vit_mm.L2ViT`.

    Args:
        state_dict (dict): A state dict of a whole model (classifier,
            detector or segmentor).

    Returns:
        dict: The backbone's entries (empty when there is none).
    """
    return {
        k[len('backbone.'):]: v
        for k, v in state_dict.items() if k.startswith('backbone.')
    }


def _backbone_keys(state_dict):
    """The backbone part of an OpenMMLab state dict without its prefix, or
    all of a state dict without ``backbone.`` keys (the authors')."""
    return backbone_weights(state_dict) or dict(state_dict)


def _leading_dim(state_dict, key):
    """Return the first dimension of a weight that an L2ViT must have.

    Args:
        state_dict (dict): Backbone keys without prefix.
        key (str): The key to read.

    Returns:
        int: ``state_dict[key].shape[0]``.
    """
    if key not in state_dict:
        raise CheckpointError(
            f'incomplete L2ViT checkpoint: missing key {key!r}')
    if state_dict[key].dim() == 0:
        raise CheckpointError(f'{key!r} is a scalar, expected a weight')
    return state_dict[key].shape[0]


def _read_depths(state_dict, num_stages):
    """Count the blocks of each stage from the ``stages.S.B.`` keys.

    Args:
        state_dict (dict): Backbone keys without prefix.
        num_stages (int): The number of downsample layers.

    Returns:
        list[int]: One positive depth per stage.
    """
    depths = [0] * num_stages
    for key in state_dict:
        match = BLOCK_KEY.match(key)
        if not match:
            continue
        stage, block = int(match.group(1)), int(match.group(2))
        if stage >= num_stages:
            raise CheckpointError(
                f'unexpected key {key!r}: the checkpoint has {num_stages} '
                f'downsample layers, so stages 0-{num_stages - 1} only')
        depths[stage] = max(depths[stage], block + 1)
    for stage, depth in enumerate(depths):
        if depth == 0:
            raise CheckpointError(
                f'stage {stage} has no blocks (no "stages.{stage}.B.*" keys; '
                f'depths read: {depths})')
    return depths


def detect_arch(state_dict):
    """Recognise an L2ViT state dict and read its architecture.

    Args:
        state_dict (dict): Authors' keys, with or without ``backbone.``.

    Returns:
        dict: ``embed_dims``, ``depths``, ``num_heads`` lists and ``name``
        (``'tiny'``, ``'small'``, ``'base'`` or ``None`` for custom ones).
        The heads of a stage of one block are ``None``: only linear
        attention has weights per head (window attention's weights are the
        same for any number of heads). ``L2ViT`` builds the arch; whether
        every weight fits it is checked by :func:`check_l2vit_state_dict`.
    """
    sd = _backbone_keys(state_dict)
    if STEM_KEY not in sd or not any(
            k.endswith('.cpe.0.proj.weight') for k in sd):
        sample = ', '.join(sorted(sd)[:3])
        raise CheckpointError(
            f'not an L2ViT checkpoint: no {STEM_KEY!r} or '
            f'"stages.S.B.cpe.0.proj.weight" keys (first keys: {sample})')
    num_stages = 1 + max(
        int(m.group(1)) for m in map(DOWNSAMPLE_KEY.match, sd) if m)
    depths = _read_depths(sd, num_stages)
    dims_keys = ['downsample_layers.0.proj.proj.3.weight'] + [
        f'downsample_layers.{i}.proj.weight' for i in range(1, num_stages)
    ]
    embed_dims = [_leading_dim(sd, key) for key in dims_keys]
    num_heads = [
        _leading_dim(sd, f'stages.{i}.1.attn.temperature')
        if depth > 1 else None for i, depth in enumerate(depths)
    ]
    arch = dict(embed_dims=embed_dims, depths=depths, num_heads=num_heads)
    try:
        L2ViT.parse_arch(buildable_arch(arch))
    except ValueError as e:
        raise CheckpointError(f'the weights give an arch that L2ViT cannot '
                              f'build: {e}') from None
    name = next((n for n, v in L2ViT.arch_zoo.items()
                 if len(n) > 1 and v == arch), None)
    return dict(arch, name=name)


def buildable_arch(arch):
    """An arch of :func:`detect_arch` that ``L2ViT`` builds: one head
    where the weights do not give the heads (any number fits them).

    Args:
        arch (dict): ``embed_dims``, ``depths`` and ``num_heads``.

    Returns:
        dict: The three lists, ``None`` heads replaced by 1.
    """
    return dict(
        embed_dims=arch['embed_dims'],
        depths=arch['depths'],
        num_heads=[heads or 1 for heads in arch['num_heads']])


def _first(names, limit=3):
    """Join the first ``limit`` names and say how many more there are."""
    shown = ', '.join(names[:limit])
    more = len(names) - limit
    return shown + (f' and {more} more' if more > 0 else '')


def state_dict_mismatches(state_dict, expected, prefix='', may_miss=None,
                          unexpected=True):
    """Say how a state dict differs from the one a model expects.

    Args:
        state_dict (dict): The weights to load.
        expected (dict): The model's own state dict (its tensors' shapes
            are what counts; meta tensors will do).
        prefix (str): Put before every key in the description.
            Defaults to ''.
        may_miss (Callable[[str], bool], optional): Whether a key of
            ``expected`` may be missing. Defaults to None (none may).
        unexpected (bool): Whether keys that the model lacks count.
            Defaults to True.

    Returns:
        list[str]: One entry per kind of difference (missing keys,
        unexpected keys, wrong shapes), naming the first keys; empty when
        the weights load strictly.
    """
    missing = [
        prefix + k for k in expected
        if k not in state_dict and not (may_miss and may_miss(k))
    ]
    extra = [prefix + k for k in state_dict
             if k not in expected] if unexpected else []
    wrong_shape = [
        f'{prefix}{k} {list(v.shape)} (expected {list(expected[k].shape)})'
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    return [
        f'{what}: {_first(names)}'
        for what, names in [('missing keys', missing), (
            'unexpected keys', extra), ('wrong shapes', wrong_shape)]
        if names
    ]


def check_l2vit_state_dict(state_dict, arch):
    """Check that the ``backbone.`` keys load strictly into ``L2ViT(arch)``.

    The backbone gets a ``norm{i}`` for every ``backbone.norm{i}.`` key of
    the state dict (the last stage's only if there is none), as a dense
    model with those ``out_indices`` or a classifier has.

    Args:
        state_dict (dict): An OpenMMLab state dict (``backbone.*`` and
            other keys, which are not checked).
        arch (dict): ``embed_dims``, ``depths`` and ``num_heads``, as
            :func:`detect_arch` returns them.
    """
    backbone = backbone_weights(state_dict)
    num_stages = len(arch['depths'])
    out_indices = sorted({
        int(m.group(1))
        for m in map(NORM_KEY.match, backbone)
        if m and int(m.group(1)) < num_stages
    }) or [num_stages - 1]
    model = L2ViT(buildable_arch(arch), out_indices=out_indices)
    problems = state_dict_mismatches(backbone, model.state_dict(),
                                     'backbone.')
    if problems:
        raise CheckpointError(
            f'the weights do not fit L2ViT(embed_dims={arch["embed_dims"]}, '
            f'depths={arch["depths"]}, num_heads={arch["num_heads"]}, '
            f'out_indices={out_indices}): ' + '; '.join(problems))


def convert_l2vit(state_dict):
    """Map an L2ViT state dict to the OpenMMLab layout.

    Args:
        state_dict (dict): The authors' classification or dense-task keys,
            or an mmdet 2.x / mmseg 0.x state dict with ``backbone.`` keys.

    Returns:
        OrderedDict: Keys for mmpretrain's ``ImageClassifier`` (backbone and
        ``head.fc``) or for mmdet/mmseg models (``backbone.`` + neck/heads),
        whose backbone part loads strictly into ``L2ViT``.
    """
    arch = detect_arch(state_dict)
    if any(k.startswith('backbone.') for k in state_dict):
        converted = OrderedDict(state_dict)
    else:
        converted = _to_openmmlab_keys(state_dict, len(arch['depths']) - 1)
    check_l2vit_state_dict(converted, arch)
    return converted


def _to_openmmlab_keys(state_dict, last):
    """Rename the authors' keys: ``backbone.``, ``norm{last}``, ``head.fc``.

    Args:
        state_dict (dict): The authors' keys.
        last (int): Index of the last stage.

    Returns:
        OrderedDict: The renamed state dict.
    """
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        elif key.startswith('norm.'):
            converted[f'backbone.norm{last}.' + key[len('norm.'):]] = value
        else:
            converted['backbone.' + key] = value
    return converted


def check_output_path(path, inputs):
    """Refuse an output path that names one of the inputs or could not be
    written.

    Checked before anything is read, so that a converter never replaces
    its own source (the rename of :func:`write_checkpoint_atomic` would)
    and does not read a large checkpoint for nothing.

    Args:
        path (str): The file to write.
        inputs (Sequence[str]): The files read to make it.

    Raises:
        CheckpointError: ``path`` is the same file as an input, or cannot
            be written (see :func:`l2vit_mm.fileio.check_writable`).
    """
    with _writing(path):
        fileio.check_writable(path)
    for source in inputs:
        if osp.exists(path) and osp.exists(source) and osp.samefile(
                path, source):
            raise CheckpointError(
                f'output {path} is the input {source}: choose another '
                'output path')


def save_checkpoint_atomic(obj, path):
    """``torch.save`` to ``path`` through :func:`write_checkpoint_atomic`.

    Args:
        obj (object): What to save.
        path (str): The destination file.
    """
    write_checkpoint_atomic(path, lambda tmp: torch.save(obj, tmp))


def write_checkpoint_atomic(path, write):
    """:func:`l2vit_mm.fileio.write_atomic`, failing with a
    :class:`CheckpointError`.

    Args:
        path (str): The destination file.
        write (Callable[[str], None]): Writes the content to the path it
            is given.

    Raises:
        CheckpointError: ``path`` cannot be written; the message names it
            and the system's reason.
    """
    with _writing(path):
        fileio.write_atomic(path, write)


@contextmanager
def _writing(path):
    """Turn an ``OSError`` raised inside into a :class:`CheckpointError`
    naming ``path`` and the system's reason."""
    try:
        yield
    except OSError as e:
        raise CheckpointError(
            f'cannot write {path}: {e.strerror or e}') from None
