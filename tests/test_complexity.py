# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Params and FLOPs equal the published numbers (mmengine's counter)."""
import pytest
from mmengine.config import Config

from l2vit_mm.utils.model_complexity import (complexity, default_shape,
                                             format_table)
from tests.conftest import REPO

BASES = REPO / 'configs' / '_base_' / 'models' / 'l2vit'


@pytest.mark.parametrize('arch,size,window,params,flops', [
    ('tiny', 224, 7, 28.60, 4.71),
    ('small', 224, 7, 50.20, 9.02),
    ('base', 224, 7, 88.58, 15.86),
    ('base', 384, 12, 88.58, 47.47),
])
def test_published_complexity(arch, size, window, params, flops):
    cfg = Config.fromfile(str(BASES / f'l2vit-{arch}.py'))
    cfg.model.backbone.window_size = window
    n_params, n_flops = complexity(cfg, (size, size))
    assert round(n_params / 1e6, 2) == params
    assert round(n_flops / 1e9, 2) == flops


def test_format_table():
    table = format_table([
        ('l2vit-tiny', (224, 224), 28_600_000, 4_710_000_000, 'whole model'),
        ('mask-rcnn', (800, 1344), 48_100_000, 101_130_000_000,
         'backbone + neck')
    ])
    assert '| l2vit-tiny | 224x224 | 28.60 | 4.71 | whole model |' in table
    assert '| mask-rcnn | 800x1344 | 48.10 | 101.13 | backbone + neck |' \
        in table


def test_get_flops_cli_counts_at_the_config_resolution():
    """The 384 fine-tuning config is counted at 384x384 with window 12."""
    import subprocess
    import sys
    config = REPO / 'configs' / 'l2vit' / \
        'l2vit-base_in21k-pre_8xb64-acc2_in1k-384px.py'
    result = subprocess.run([
        sys.executable,
        str(REPO / 'tools' / 'analysis_tools' / 'get_flops.py'),
        str(config)
    ], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '| l2vit-base_in21k-pre_8xb64-acc2_in1k-384px | 384x384 | ' \
        '88.58 | 47.47 | whole model |' in result.stdout


def test_get_flops_counts_a_tta_config_as_its_model(capsys):
    from get_flops import main
    single = REPO / 'configs' / 'upernet' / \
        'l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
    ms_flip = single.with_name(single.stem + '-ms-flip.py')
    assert default_shape(Config.fromfile(ms_flip)) == \
        default_shape(Config.fromfile(single)) == (512, 2048)
    main([str(single), str(ms_flip), '--shape', '64'])
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith('| l2vit-tiny')]
    assert [row.split('|')[2:] for row in rows] == [
        [' 64x64 ', ' 60.25 ', ' 3.91 ', ' backbone + decode head ', '']] * 2


def test_default_shape_reads_keep_ratio_scales_as_landscape():
    demo = REPO / 'configs' / 'demo' / \
        'mask-rcnn_l2vit-demo_fpn_digit-scenes.py'
    coco = REPO / 'configs' / 'mask_rcnn' / \
        'mask-rcnn_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py'
    assert default_shape(Config.fromfile(demo)) == (128, 1333)
    assert default_shape(Config.fromfile(coco)) == (800, 1333)


@pytest.mark.parametrize('shape, message', [
    (['16', '16', '16'], '--shape takes H [W], got 3 values'),
    (['0'], "expected a positive int, got '0'"),
    (['-5'], "expected a positive int, got '-5'"),
])
def test_get_flops_refuses_bad_shapes(shape, message, capsys):
    from get_flops import parse_args
    with pytest.raises(SystemExit):
        parse_args(['config.py', '--shape', *shape])
    assert message in capsys.readouterr().err


def test_demo_prints_the_published_complexity(capsys):
    """``make demo`` prints the variants' params and FLOPs through this
    tool's table."""
    import importlib.util
    path = REPO / 'demo' / 'run_demo.py'
    spec = importlib.util.spec_from_file_location('run_demo', path)
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    run_demo.complexity_table()
    out = capsys.readouterr().out
    for row in ['| l2vit-tiny (window 7) | 224x224 | 28.60 | 4.71 |',
                '| l2vit-small (window 7) | 224x224 | 50.20 | 9.02 |',
                '| l2vit-base (window 7) | 224x224 | 88.58 | 15.86 |',
                '| l2vit-base (window 12) | 384x384 | 88.58 | 47.47 |']:
        assert row + ' whole model |' in out


def test_get_flops_names_a_config_without_backbone(tmp_path):
    """A model with no backbone (here inside a TTA wrapper) is refused
    with the config's path, before anything is built."""
    from get_flops import main
    config = tmp_path / 'no_backbone.py'
    config.write_text("model = dict(type='SegTTAModel', "
                      "module=dict(type='EncoderDecoder'))\n")
    with pytest.raises(SystemExit) as error:
        main([str(config), '--shape', '32'])
    assert str(error.value) == (
        f'{config}: no model.backbone (nor one inside a test-time '
        "augmentation wrapper's model.module) to count")


def test_get_flops_checks_every_config_before_counting(tmp_path, monkeypatch):
    """A missing config or one without a model (a _base_ fragment), even
    last in the list, is refused naming it before any model is counted."""
    import get_flops
    monkeypatch.setattr(get_flops, 'complexity', None)
    fragment = REPO / 'configs' / '_base_' / 'default_runtime.py'
    model = REPO / 'configs' / '_base_' / 'models' / 'l2vit' / 'l2vit-tiny.py'
    missing = tmp_path / 'nope.py'
    for bad, message in [(missing, 'config file not found'),
                         (fragment, 'no model.backbone')]:
        with pytest.raises(SystemExit) as error:
            get_flops.main([str(model), str(bad)])
        assert str(error.value).startswith(f'{bad}: ')
        assert message in str(error.value)
