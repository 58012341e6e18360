# Copyright (c) l2vit_mm contributors. All rights reserved.
import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from l2vit_reference import ReferenceL2ViT

from l2vit_mm.converters import (CheckpointError, backbone_weights,
                                 convert_l2vit, detect_arch,
                                 extract_state_dict, save_checkpoint_atomic)
from tests.conftest import REPO

CONVERTER = REPO / 'tools' / 'model_converters' / 'l2vit2mmpretrain.py'


def load_cli(path):
    """Import a converter script, to call its ``main`` in this process."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_heads_of_a_one_block_stage_are_not_guessed(tmp_path):
    """A stage of one block has window attention only, whose weights fit
    any number of heads: detection leaves them open, and a config with any
    heads there accepts the checkpoint (other heads still count)."""
    from mmengine.config import Config

    from l2vit_mm.utils import check_backbone
    dims, depths = [16, 32, 64, 128], [2, 2, 1, 2]
    sd = ReferenceL2ViT(dims, depths, [1, 2, 4, 8], num_classes=0).state_dict()
    assert detect_arch(sd)['num_heads'] == [1, 2, None, 8]
    src, dst = tmp_path / 'l2vit.pth', tmp_path / 'converted.pth'
    torch.save(dict(model=sd), src)
    result = run_converter(src, dst)
    assert result.returncode == 0, result.stderr
    assert 'num_heads=[1, 2, None, 8])' in result.stdout
    for heads, fits in [([1, 2, 4, 8], True), ([1, 2, 1, 8], True),
                        ([1, 2, 4, 4], False)]:
        cfg = Config(dict(default_scope='mmpretrain', model=dict(
            type='ImageClassifier', backbone=dict(
                type='L2ViT',
                arch=dict(embed_dims=dims, depths=depths, num_heads=heads),
                init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                              prefix='backbone.')))))
        if fits:
            check_backbone(cfg)
        else:
            with pytest.raises(ValueError, match='holds an L2ViT with'):
                check_backbone(cfg)


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
    with pytest.raises(
            CheckpointError,
            match=r'the EMA weights \("model_ema"\) were asked for but the '
            r"checkpoint has only \['model'\]"):
        extract_state_dict(dict(model=official['cls_state_dict']),
                           use_ema=True)


def drop(state_dict, *prefixes):
    return {k: v for k, v in state_dict.items() if not k.startswith(prefixes)}


def malformed_cases(official):
    """Broken copies of the authors' weights and what the error must name."""
    cls = dict(official['cls_state_dict'])
    det = {'backbone.' + k: v for k, v in official['det_state_dict'].items()}
    return [
        (drop(cls, 'downsample_layers.2.proj.weight'),
         "missing key 'downsample_layers.2.proj.weight'"),
        (dict(cls, **{'stages.4.0.norm1.weight': torch.ones(128)}),
         "unexpected key 'stages.4.0.norm1.weight'"),
        (drop(cls, 'stages.2.'), 'stage 2 has no blocks'),
        (drop(cls, 'stages.1.1.attn.temperature'),
         "missing key 'stages.1.1.attn.temperature'"),
        (dict(cls, **{'stages.1.5.norm1.weight': torch.ones(32)}),
         r'depths=\[2, 6, 2, 2\].*missing keys: '
         r'backbone\.stages\.1\.2\.cpe\.0\.proj\.weight'),
        (drop(cls, 'stages.3.1.local_mp.bn.running_var'),
         r'missing keys: backbone\.stages\.3\.1\.local_mp\.bn\.running_var'),
        (dict(cls, **{'stages.0.0.attn.extra': torch.ones(1)}),
         r'unexpected keys: backbone\.stages\.0\.0\.attn\.extra'),
        (dict(cls, **{'stages.0.0.mlp.fc1.weight': torch.ones(3, 16)}),
         r'wrong shapes: backbone\.stages\.0\.0\.mlp\.fc1\.weight '
         r'\[3, 16\] \(expected \[64, 16\]\)'),
        (dict(cls, **{'stages.0.1.attn.temperature': torch.ones(3, 1, 1)}),
         'not divisible by num_heads 3'),
        (dict(det, **{'backbone.norm7.weight': torch.ones(128)}),
         r'out_indices=\[0, 1, 2, 3\].*unexpected keys: '
         r'backbone\.norm7\.weight'),
        (drop(det, 'backbone.downsample_layers.0.norm.bias'),
         r'missing keys: backbone\.downsample_layers\.0\.norm\.bias'),
    ]


def test_malformed_l2vit_weights_raise_checkpoint_error(official):
    for state_dict, message in malformed_cases(official):
        with pytest.raises(CheckpointError, match=message):
            convert_l2vit(state_dict)


def test_cli_refuses_malformed_weights_without_writing(
        official, tmp_path, capsys):
    convert = load_cli(CONVERTER)
    for i, (state_dict, message) in enumerate(malformed_cases(official)):
        src, dst = tmp_path / f'{i}.pth', tmp_path / f'{i}_out.pth'
        torch.save(dict(state_dict=state_dict), src)
        assert convert.main([str(src), str(dst)]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert err.startswith(f'error: {src}: ')
        assert not dst.exists()
    assert not list(tmp_path.glob('*.tmp'))


def test_converted_weights_load_strictly(official, official_arch):
    from l2vit_mm import L2ViT
    converted = convert_l2vit(official['cls_state_dict'])
    model = L2ViT(official_arch)
    model.load_state_dict(backbone_weights(converted), strict=True)


def test_check_backbone_reports_a_broken_pretrained_file(
        official, official_arch, tmp_path):
    from mmengine.config import Config

    from l2vit_mm.utils import check_backbone
    converted = convert_l2vit(official['cls_state_dict'])
    del converted['backbone.downsample_layers.2.proj.weight']
    path = tmp_path / 'broken.pth'
    torch.save(dict(state_dict=converted), path)
    cfg = Config(
        dict(default_scope='mmpretrain', model=dict(
            type='ImageClassifier',
            backbone=dict(
                type='L2ViT',
                arch=official_arch,
                init_cfg=dict(
                    type='Pretrained', checkpoint=str(path),
                    prefix='backbone.')))))
    with pytest.raises(ValueError,
                       match="missing key 'downsample_layers.2.proj.weight'"):
        check_backbone(cfg)


@pytest.mark.parametrize('umask', [0o022, 0o027])
def test_saved_checkpoint_gets_the_mode_of_a_plain_save(umask, tmp_path):
    old = os.umask(umask)
    try:
        save_checkpoint_atomic(dict(w=torch.ones(1)), tmp_path / 'atomic.pth')
        torch.save(dict(w=torch.ones(1)), tmp_path / 'plain.pth')
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / 'atomic.pth').stat().st_mode)
    assert mode == 0o666 & ~umask
    assert mode == stat.S_IMODE((tmp_path / 'plain.pth').stat().st_mode)


def unwritable_destinations(tmp_path):
    """A folder as destination and a destination below a plain file."""
    folder = tmp_path / 'a_folder'
    folder.mkdir()
    plain = tmp_path / 'a_file'
    plain.write_text('not a folder')
    return [(folder, 'Is a directory'), (plain / 'out.pth', 'Not a directory'),
            (plain / 'sub' / 'out.pth', 'Not a directory'),
            (Path('/proc/l2vit/out.pth'), 'No such file or directory')]


def test_unwritable_destination_is_a_checkpoint_error(tmp_path):
    for dst, reason in unwritable_destinations(tmp_path):
        with pytest.raises(CheckpointError) as info:
            save_checkpoint_atomic(dict(w=torch.ones(1)), dst)
        assert str(info.value) == f'cannot write {dst}: {reason}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a_file', 'a_folder']
    assert not list((tmp_path / 'a_folder').iterdir())


def test_cli_reports_unwritable_destinations(official, tmp_path, capsys):
    convert = load_cli(CONVERTER)
    src = tmp_path / 'l2vit.pth'
    torch.save(dict(model=official['cls_state_dict']), src)
    for dst, reason in unwritable_destinations(tmp_path):
        assert convert.main([str(src), str(dst)]) == 1
        out, err = capsys.readouterr()
        assert err == f'error: cannot write {dst}: {reason}\n'
        assert out == ''  # refused before the source was read
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'a_file', 'a_folder', 'l2vit.pth']
    assert not list((tmp_path / 'a_folder').iterdir())


def test_cli_refuses_to_overwrite_its_input(official, tmp_path, capsys):
    convert = load_cli(CONVERTER)
    src = tmp_path / 'l2vit.pth'
    torch.save(dict(model=official['cls_state_dict']), src)
    before = src.read_bytes()
    os.link(src, tmp_path / 'hardlink.pth')
    (tmp_path / 'symlink.pth').symlink_to(src)
    for dst in (src, tmp_path / '.' / 'l2vit.pth', tmp_path / 'hardlink.pth',
                tmp_path / 'symlink.pth'):
        assert convert.main([str(src), str(dst)]) == 1
        assert capsys.readouterr().err == (
            f'error: output {dst} is the input {src}: choose another '
            'output path\n')
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'hardlink.pth', 'l2vit.pth', 'symlink.pth']
