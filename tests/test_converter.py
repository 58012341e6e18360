# Copyright (c) l2vit_mm contributors. All rights reserved.
import subprocess
import sys

import pytest
import torch
from l2vit_reference import ReferenceL2ViT

from l2vit_mm.converters import (CheckpointError, convert_l2vit, detect_arch,
                                 extract_state_dict)
from tests.conftest import REPO

CONVERTER = REPO / 'tools' / 'model_converters' / 'l2vit2mmpretrain.py'


def run_converter(*args):
    return subprocess.run([sys.executable, str(CONVERTER), *map(str, args)],
                          capture_output=True,
                          text=True)


def test_convert_authors_checkpoint_cli(official, official_arch, tmp_path):
    raw = {k: v.clone() for k, v in official['cls_state_dict'].items()}
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in raw.items()}
    src = tmp_path / 'l2vit.pth'
    torch.save(dict(model=raw, model_ema=ema, epoch=3), src)

    dst = tmp_path / 'out' / 'converted.pth'
    result = run_converter(src, dst)
    assert result.returncode == 0, result.stderr
    assert 'custom (embed_dims=[16, 32, 64, 128], depths=[2, 2, 2, 2], ' \
        'num_heads=[1, 2, 4, 8])' in result.stdout
    assert f'Converted {len(raw)} keys -> {len(raw)} keys' in result.stdout
    state_dict = torch.load(dst, weights_only=False)['state_dict']
    assert torch.equal(state_dict['head.fc.weight'], raw['head.weight'])
    assert torch.equal(state_dict['backbone.norm3.bias'], raw['norm.bias'])
    assert torch.equal(state_dict['backbone.stages.1.1.attn.temperature'],
                       raw['stages.1.1.attn.temperature'])
    assert all(k.startswith(('backbone.', 'head.fc.')) for k in state_dict)

    dst_ema = tmp_path / 'ema.pth'
    assert run_converter(src, dst_ema, '--ema').returncode == 0
    ema_sd = torch.load(dst_ema, weights_only=False)['state_dict']
    assert torch.equal(ema_sd['head.fc.weight'], ema['head.weight'])


def test_detects_zoo_archs():
    for name, dims, depths, heads in [
        ('tiny', [96, 192, 384, 768], [2, 2, 6, 2], [3, 6, 12, 24]),
        ('base', [128, 256, 512, 1024], [2, 2, 18, 2], [4, 8, 16, 32]),
    ]:
        sd = ReferenceL2ViT(dims, depths, heads, num_classes=0).state_dict()
        arch = detect_arch(sd)
        assert arch == dict(embed_dims=dims, depths=depths, num_heads=heads,
                            name=name)


def test_dense_mm2x_checkpoint_passes_through(official):
    sd = {'backbone.' + k: v for k, v in official['det_state_dict'].items()}
    sd['neck.lateral_convs.0.conv.weight'] = torch.zeros(4, 16, 1, 1)
    sd['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(81, 4)
    converted = convert_l2vit(extract_state_dict(dict(state_dict=sd)))
    assert converted.keys() == sd.keys()
    assert 'backbone.norm0.weight' in converted


def test_refuses_other_backbones(tmp_path):
    convnext = {
        'downsample_layers.0.0.weight': torch.zeros(96, 3, 4, 4),
        'stages.0.0.dwconv.weight': torch.zeros(96, 1, 7, 7),
    }
    swin = {'patch_embed.proj.weight': torch.zeros(96, 3, 4, 4)}
    for name, sd in [('convnext', convnext), ('swin', swin)]:
        src = tmp_path / f'{name}.pth'
        dst = tmp_path / f'{name}_out.pth'
        torch.save(dict(model=sd), src)
        result = run_converter(src, dst)
        assert result.returncode == 1
        assert 'not an L2ViT checkpoint' in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not dst.exists()
        with pytest.raises(CheckpointError, match='not an L2ViT'):
            convert_l2vit(sd)


def test_refuses_missing_truncated_and_non_checkpoints(official, tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(dict(model=official['cls_state_dict']), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:5000])
    text = tmp_path / 'notes.pth'
    text.write_text('hello')
    cases = [(tmp_path / 'missing.pth', 'checkpoint file not found'),
             (truncated, 'cannot read checkpoint'),
             (text, 'cannot read checkpoint')]
    for src, message in cases:
        dst = tmp_path / 'never.pth'
        result = run_converter(src, dst)
        assert result.returncode == 1
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not dst.exists()
        assert not list(tmp_path.glob('*.tmp'))


def test_ema_missing_is_an_error(official):
    with pytest.raises(CheckpointError, match='model_ema'):
        extract_state_dict(dict(model=official['cls_state_dict']),
                           use_ema=True)
