# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Params and FLOPs equal the published numbers (mmengine's counter)."""
import pytest
from get_flops import complexity, format_table
from mmengine.config import Config

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
    table = format_table([('l2vit-tiny', (224, 224), 28_600_000,
                           4_710_000_000)])
    assert '| l2vit-tiny | 224x224 | 28.60 | 4.71 |' in table


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
        '88.58 | 47.47 |' in result.stdout
