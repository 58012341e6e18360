# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Read the authors' L2ViT checkpoints and map them to the OpenMMLab layout.

The authors' keys (``downsample_layers.*``, ``stages.*``, ``norm.*``,
``head.*``) become ``backbone.*`` keys of :class:`l2vit_mm.L2ViT`, the final
``norm.`` becomes ``backbone.norm{last}.`` and the classifier ``head.``
becomes mmpretrain's ``head.fc.``. Checkpoints of the authors' mmdet 2.x /
mmseg 0.x models already use ``backbone.`` keys; they and the neck and head
keys pass through unchanged.
"""
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict

import torch

from ..models.backbones.l2vit import L2ViT

STEM_KEY = 'downsample_layers.0.proj.proj.0.weight'
BLOCK_KEY = re.compile(r'^stages\.(\d+)\.(\d+)\.')


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or is not an L2ViT checkpoint."""


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
                '--ema asks for "model_ema" but the checkpoint has only '
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
            torch.is_tensor(v) for v in state_dict.values()):
        raise CheckpointError('the checkpoint holds no state dict of tensors')
    return OrderedDict(state_dict)


def _backbone_keys(state_dict):
    """Return the backbone part of a state dict without its prefix."""
    if any(k.startswith('backbone.') for k in state_dict):
        return {
            k[len('backbone.'):]: v
            for k, v in state_dict.items() if k.startswith('backbone.')
        }
    return dict(state_dict)


def detect_arch(state_dict):
    """Recognise an L2ViT state dict and read its architecture.

    Args:
        state_dict (dict): Authors' keys, with or without ``backbone.``.

    Returns:
        dict: ``embed_dims``, ``depths``, ``num_heads`` lists and ``name``
        (``'tiny'``, ``'small'``, ``'base'`` or ``None`` for custom ones).
    """
    sd = _backbone_keys(state_dict)
    if STEM_KEY not in sd or not any(
            k.endswith('.cpe.0.proj.weight') for k in sd):
        sample = ', '.join(sorted(sd)[:3])
        raise CheckpointError(
            f'not an L2ViT checkpoint: no {STEM_KEY!r} or '
            f'"stages.S.B.cpe.0.proj.weight" keys (first keys: {sample})')
    num_stages = 1 + max(
        int(k.split('.')[1]) for k in sd if k.startswith('downsample_layers.'))
    depths = [0] * num_stages
    for key in sd:
        match = BLOCK_KEY.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            depths[stage] = max(depths[stage], block + 1)
    embed_dims = [sd['downsample_layers.0.proj.proj.3.weight'].shape[0]] + [
        sd[f'downsample_layers.{i}.proj.weight'].shape[0]
        for i in range(1, num_stages)
    ]
    num_heads = []
    for i, dims in enumerate(embed_dims):
        temperature = sd.get(f'stages.{i}.1.attn.temperature')
        # Stages without a linear-attention block: head dim 32 as the zoo.
        num_heads.append(temperature.shape[0]
                         if temperature is not None else max(dims // 32, 1))
    arch = dict(embed_dims=embed_dims, depths=depths, num_heads=num_heads)
    name = next((n for n, v in L2ViT.arch_zoo.items()
                 if len(n) > 1 and v == arch), None)
    return dict(arch, name=name)


def convert_l2vit(state_dict):
    """Map an L2ViT state dict to the OpenMMLab layout.

    Args:
        state_dict (dict): The authors' classification or dense-task keys,
            or an mmdet 2.x / mmseg 0.x state dict with ``backbone.`` keys.

    Returns:
        OrderedDict: Keys for mmpretrain's ``ImageClassifier`` (backbone and
        ``head.fc``) or for mmdet/mmseg models (``backbone.`` + neck/heads).
    """
    arch = detect_arch(state_dict)
    last = len(arch['depths']) - 1
    if any(k.startswith('backbone.') for k in state_dict):
        return OrderedDict(state_dict)
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        elif key.startswith('norm.'):
            converted[f'backbone.norm{last}.' + key[len('norm.'):]] = value
        else:
            converted['backbone.' + key] = value
    return converted


def save_checkpoint_atomic(obj, path):
    """``torch.save`` to a temporary file beside ``path``, then rename.

    A failure leaves no partial file at ``path``.

    Args:
        obj (object): What to save.
        path (str): The destination file.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise
