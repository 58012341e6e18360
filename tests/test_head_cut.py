# Copyright (c) l2vit_mm contributors. All rights reserved.
import subprocess
import sys

import pytest
import torch

from l2vit_mm.converters import (CheckpointError, class_map_from_names,
                                 convert_l2vit, cut_head, read_class_map,
                                 read_class_names)
from tests.conftest import REPO, SHARED
from tests.test_converter import load_cli, unwritable_destinations

CUTTER = REPO / 'tools' / 'model_converters' / 'l2vit_cut_head_22kto1k.py'


def synthetic_map(path, n=1000, src=21841):
    indices = torch.randperm(src, generator=torch.Generator().manual_seed(0))
    path.write_text('\n'.join(str(int(i)) for i in indices[:n]) + '\n')
    return [int(i) for i in indices[:n]]


def authors_22k_checkpoint(official):
    sd = {k: v for k, v in official['cls_state_dict'].items()}
    sd['head.weight'] = torch.randn(21841, 128)
    sd['head.bias'] = torch.randn(21841)
    return sd


def test_cut_head_cli(official, tmp_path):
    sd = authors_22k_checkpoint(official)
    src = tmp_path / 'l2vit_22k.pth'
    torch.save(dict(model=sd), src)
    class_map = synthetic_map(tmp_path / 'map.txt')
    dst = tmp_path / 'cut.pth'
    result = subprocess.run(
        [sys.executable, str(CUTTER), str(src), str(tmp_path / 'map.txt'),
         str(dst)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    cut = torch.load(dst, weights_only=False)['state_dict']
    assert cut['head.fc.weight'].shape == (1000, 128)
    for i in (0, 517, 999):
        assert torch.equal(cut['head.fc.weight'][i],
                           sd['head.weight'][class_map[i]])
        assert cut['head.fc.bias'][i] == sd['head.bias'][class_map[i]]
    assert torch.equal(cut['backbone.norm3.weight'], sd['norm.weight'])


def test_authors_map_reads():
    indices = read_class_map(SHARED / 'data' / 'l2vit_custom_map22kto1k.txt')
    assert len(indices) == 1000 and len(set(indices)) == 1000
    assert max(indices) < 21841


def test_bad_maps_and_heads(official, tmp_path):
    short = tmp_path / 'short.txt'
    short.write_text('1\n2\n')
    with pytest.raises(CheckpointError, match='has 2 entries, expected 1000'):
        read_class_map(short)
    out_of_range = tmp_path / 'oor.txt'
    out_of_range.write_text('\n'.join(['5'] * 999 + ['21841']))
    with pytest.raises(CheckpointError, match='line 1000: index 21841 is out'):
        read_class_map(out_of_range)
    with pytest.raises(CheckpointError, match='cannot read class map'):
        read_class_map(tmp_path / 'missing.txt')
    sd = {
        'head.fc.weight': torch.zeros(1000, 8),
        'head.fc.bias': torch.zeros(1000)
    }
    with pytest.raises(CheckpointError, match='head is 1000-way, expected'):
        cut_head(sd, list(range(1000)))


def test_maps_refuse_repeated_indices(official, tmp_path, capsys):
    indices = list(range(1000))
    indices[500], indices[600] = 9, 3
    repeated = tmp_path / 'repeated.txt'
    repeated.write_text('\n'.join(map(str, indices)) + '\n')
    with pytest.raises(CheckpointError) as info:
        read_class_map(repeated)
    assert str(info.value) == (f'class map {repeated} repeats indices 3, 9: '
                               'each class needs its own source row')
    many = tmp_path / 'many.txt'
    many.write_text('\n'.join(map(str, list(range(996)) + [0, 1, 2, 3])))
    with pytest.raises(CheckpointError,
                       match=r'repeats indices 0, 1, 2, \.\.\.: each'):
        read_class_map(many)

    src = tmp_path / 'l2vit_22k.pth'
    torch.save(dict(model=authors_22k_checkpoint(official)), src)
    cutter = load_cli(CUTTER)
    assert cutter.main([str(src), str(repeated), str(tmp_path / 'cut.pth')
                        ]) == 1
    assert capsys.readouterr().err == f'error: {info.value}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'l2vit_22k.pth', 'many.txt', 'repeated.txt']


def test_cut_head_refuses_a_bias_of_another_size(official, tmp_path, capsys):
    last_rows = list(range(21841 - 1000, 21841))
    for size in (21840, 21842):
        sd = convert_l2vit(authors_22k_checkpoint(official))
        sd['head.fc.bias'] = torch.zeros(size)
        with pytest.raises(CheckpointError) as info:
            cut_head(sd, last_rows)
        assert str(info.value) == (
            f'head.fc.bias has shape [{size}], expected [21841] for the '
            '21841 rows of head.fc.weight')

    sd = authors_22k_checkpoint(official)
    sd['head.bias'] = torch.zeros(21840)
    src = tmp_path / 'l2vit_22k.pth'
    torch.save(dict(model=sd), src)
    synthetic_map(tmp_path / 'map.txt')
    cutter = load_cli(CUTTER)
    dst = tmp_path / 'cut.pth'
    assert cutter.main([str(src), str(tmp_path / 'map.txt'), str(dst)]) == 1
    assert capsys.readouterr().err == (
        'error: head.fc.bias has shape [21840], expected [21841] for the '
        '21841 rows of head.fc.weight\n')
    assert not dst.exists()


def test_cutter_takes_ema_weights_with_ema(official, tmp_path, capsys):
    plain = authors_22k_checkpoint(official)
    ema = authors_22k_checkpoint(official)
    ema['norm.weight'] = plain['norm.weight'] + 1
    src = tmp_path / 'l2vit_22k.pth'
    torch.save(dict(model=plain, model_ema=ema), src)
    class_map = synthetic_map(tmp_path / 'map.txt')
    cutter = load_cli(CUTTER)
    for flags, weights in (([], plain), (['--ema'], ema)):
        dst = tmp_path / f'cut{len(flags)}.pth'
        assert cutter.main(
            [str(src), str(tmp_path / 'map.txt'), str(dst)] + flags) == 0
        capsys.readouterr()
        cut = torch.load(dst, weights_only=False)['state_dict']
        assert torch.equal(cut['head.fc.weight'],
                           weights['head.weight'][class_map])
        assert torch.equal(cut['head.fc.bias'],
                           weights['head.bias'][class_map])
        assert torch.equal(cut['backbone.norm3.weight'],
                           weights['norm.weight'])


def test_cli_refuses_wrong_head_without_writing(official, tmp_path):
    src = tmp_path / 'in1k.pth'
    torch.save(dict(model=official['cls_state_dict']), src)
    synthetic_map(tmp_path / 'map.txt')
    dst = tmp_path / 'cut.pth'
    result = subprocess.run(
        [sys.executable, str(CUTTER), str(src), str(tmp_path / 'map.txt'),
         str(dst)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == ('error: the head is 10-way, expected a '
                                     '21841-way ImageNet-22K head')
    assert not dst.exists()


def test_cli_reports_unwritable_destinations(official, tmp_path, capsys):
    cutter = load_cli(CUTTER)
    src = tmp_path / 'l2vit_22k.pth'
    torch.save(dict(model=authors_22k_checkpoint(official)), src)
    synthetic_map(tmp_path / 'map.txt')
    for dst, reason in unwritable_destinations(tmp_path):
        assert cutter.main([str(src), str(tmp_path / 'map.txt'),
                            str(dst)]) == 1
        out, err = capsys.readouterr()
        assert err == f'error: cannot write {dst}: {reason}\n'
        assert out == ''  # refused before the source was read
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'a_file', 'a_folder', 'l2vit_22k.pth', 'map.txt']
    assert not list((tmp_path / 'a_folder').iterdir())


def swin_22k_checkpoint():
    """An OpenMMLab Swin classifier with a 21841-way head."""
    return {
        'backbone.patch_embed.projection.weight': torch.zeros(96, 3, 4, 4),
        'backbone.stages.0.blocks.0.attn.w_msa.qkv.weight':
        torch.zeros(288, 96),
        'head.fc.weight': torch.zeros(21841, 768),
        'head.fc.bias': torch.zeros(21841),
    }


def test_cut_head_refuses_other_and_broken_backbones(official):
    with pytest.raises(CheckpointError, match='not an L2ViT checkpoint'):
        cut_head(swin_22k_checkpoint(), list(range(1000)))
    broken = convert_l2vit(authors_22k_checkpoint(official))
    del broken['backbone.stages.2.1.norm3.weight']
    with pytest.raises(CheckpointError,
                       match=r'missing keys: backbone\.stages\.2\.1\.norm3'):
        cut_head(broken, list(range(1000)))


def test_cli_refuses_other_backbones_without_writing(tmp_path, capsys):
    cutter = load_cli(CUTTER)
    src = tmp_path / 'swin_22k.pth'
    torch.save(dict(state_dict=swin_22k_checkpoint()), src)
    synthetic_map(tmp_path / 'map.txt')
    dst = tmp_path / 'cut.pth'
    assert cutter.main([str(src), str(tmp_path / 'map.txt'), str(dst)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: not an L2ViT checkpoint')
    assert len(err.strip().splitlines()) == 1
    assert not dst.exists()


MAPPER = REPO / 'tools' / 'model_converters' / 'l2vit_class_map_22kto1k.py'


def test_class_map_of_a_head_trained_on_class_folders(official, tmp_path,
                                                      capsys):
    """A 22K head in sorted-folder order, cut by the map that the mapper
    writes: each 1K class keeps the row of its own 22K class."""
    # A text file keeps its order (the head's), a folder is sorted.
    names_22k = [f'n{i:08d}' for i in torch.randperm(
        10**8, generator=torch.Generator().manual_seed(1))[:21841].tolist()]
    (tmp_path / 'classes_22k.txt').write_text(
        ''.join(f'{name} some label\n' for name in names_22k))
    picked = torch.randperm(
        21841, generator=torch.Generator().manual_seed(2))[:1000].tolist()
    for i in picked:
        (tmp_path / 'in1k_train' / names_22k[i]).mkdir(parents=True)
    (tmp_path / 'in1k_train' / 'README.txt').write_text('not a class')

    mapper = load_cli(MAPPER)
    assert mapper.main([
        str(tmp_path / 'classes_22k.txt'),
        str(tmp_path / 'in1k_train'),
        str(tmp_path / 'maps' / 'map.txt')
    ]) == 0
    assert capsys.readouterr().out.startswith('1000 classes mapped')
    names_1k = sorted(names_22k[i] for i in picked)
    assert read_class_map(tmp_path / 'maps' / 'map.txt') == [
        names_22k.index(name) for name in names_1k]

    sd = authors_22k_checkpoint(official)
    torch.save(dict(model=sd), tmp_path / 'l2vit_22k.pth')
    cutter = load_cli(CUTTER)
    assert cutter.main([
        str(tmp_path / 'l2vit_22k.pth'),
        str(tmp_path / 'maps' / 'map.txt'),
        str(tmp_path / 'cut.pth')
    ]) == 0
    cut = torch.load(tmp_path / 'cut.pth', weights_only=False)['state_dict']
    for i, name in enumerate(names_1k):
        row = names_22k.index(name)
        assert torch.equal(cut['head.fc.weight'][i], sd['head.weight'][row])


def test_class_map_errors_name_the_classes(tmp_path, capsys):
    (tmp_path / 'src.txt').write_text('n01\nn02\nn03\n')
    (tmp_path / 'dup.txt').write_text('n01\nn02\nn01\n')
    (tmp_path / 'dst.txt').write_text('n03\nn07\nn01\n')
    with pytest.raises(CheckpointError) as info:
        class_map_from_names(read_class_names(tmp_path / 'src.txt'),
                             read_class_names(tmp_path / 'dst.txt'))
    assert str(info.value) == '1 target classes are not source classes: n07'
    with pytest.raises(CheckpointError, match='source classes repeat names: '
                       'n01$'):
        class_map_from_names(read_class_names(tmp_path / 'dup.txt'), ['n01'])
    with pytest.raises(CheckpointError, match='cannot read class names from'):
        read_class_names(tmp_path / 'missing')

    binary = tmp_path / 'weights.pth'
    torch.save(dict(w=torch.ones(4)), binary)
    with pytest.raises(CheckpointError, match='neither a folder nor a text'):
        read_class_names(binary)
    with pytest.raises(CheckpointError, match='is not a text file'):
        read_class_map(binary)

    # The mapper writes maps for the 1000 classes that the cutter takes.
    in1k = [f'n{i:02d}' for i in range(1, 1000)] + ['n07x']
    (tmp_path / 'in1k.txt').write_text('\n'.join(in1k) + '\n')
    (tmp_path / 'in22k.txt').write_text('\n'.join(in1k[:-1]) + '\n')
    mapper = load_cli(MAPPER)
    for args, err in [
        (['in22k.txt', 'in1k.txt', 'map.txt'],
         '1 target classes are not source classes: n07x'),
        (['src.txt', 'dst.txt', 'map.txt'],
         f'{tmp_path / "dst.txt"} has 3 classes, expected the 1000 of '
         'ImageNet-1K (a folder with one sub-folder per class, or a text '
         'file with one per line)'),
        (['in22k.txt', 'weights.pth', 'map.txt'],
         f'class names {tmp_path / "weights.pth"} is neither a folder nor '
         'a text file'),
        (['in22k.txt', 'in1k.txt', 'in1k.txt'],
         f'output {tmp_path / "in1k.txt"} is the input '
         f'{tmp_path / "in1k.txt"}: choose another output path'),
    ]:
        assert mapper.main([str(tmp_path / a) for a in args]) == 1
        assert capsys.readouterr().err == f'error: {err}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'dst.txt', 'dup.txt', 'in1k.txt', 'in22k.txt', 'src.txt',
        'weights.pth']
    assert (tmp_path / 'in1k.txt').read_text().split() == in1k


def test_cutter_refuses_to_overwrite_its_inputs(official, tmp_path, capsys):
    cutter = load_cli(CUTTER)
    src = tmp_path / 'l2vit_22k.pth'
    torch.save(dict(model=authors_22k_checkpoint(official)), src)
    class_map = tmp_path / 'map.txt'
    synthetic_map(class_map)
    before = {p: p.read_bytes() for p in (src, class_map)}
    for dst in (src, class_map):
        assert cutter.main([str(src), str(class_map), str(dst)]) == 1
        assert capsys.readouterr().err == (
            f'error: output {dst} is the input {dst}: choose another '
            'output path\n')
    assert {p: p.read_bytes() for p in (src, class_map)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'l2vit_22k.pth', 'map.txt']
