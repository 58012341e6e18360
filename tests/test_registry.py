# Copyright (c) l2vit_mm contributors. All rights reserved.
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from l2vit_mm import L2ViT
from l2vit_mm.registry import registered_libraries
from tests.conftest import REPO

CONFIG = """
default_scope = '{scope}'
custom_imports = dict(imports=['l2vit_mm'], allow_failed_imports=False)
model = dict(type='L2ViT', arch=dict(embed_dims=[16, 32, 64, 128],
             depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]),
             out_indices=(0, 1, 2, 3))
"""


def test_registered_in_all_three_libraries():
    assert registered_libraries() == ['mmpretrain', 'mmdet', 'mmseg']


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_build_from_each_library_config(scope, tmp_path):
    path = tmp_path / f'{scope}_l2vit.py'
    path.write_text(CONFIG.format(scope=scope))
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert isinstance(model, L2ViT)
    outs = model.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]


def test_custom_imports_registers_in_fresh_process(tmp_path):
    """A config's custom_imports alone makes L2ViT buildable in mmdet."""
    path = tmp_path / 'det.py'
    path.write_text(CONFIG.format(scope='mmdet'))
    code = ('from mmengine.config import Config; '
            'from mmdet.registry import MODELS; '
            f'cfg = Config.fromfile({str(path)!r}); '
            'print(type(MODELS.build(cfg.model)).__name__)')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'L2ViT'


def test_readme_quick_start_config_builds(tmp_path):
    """The README's custom_imports snippet, on mmdet's Mask R-CNN base,
    builds a Mask R-CNN with L2ViT-T and a neck of its channels."""
    readme = (REPO / 'README.md').read_text()
    snippet = next(block for block in readme.split('```python\n')[1:]
                   if 'custom_imports' in block).split('```')[0]
    path = tmp_path / 'user_config.py'
    path.write_text(snippet)
    cfg = Config.fromfile(str(path))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, L2ViT)
    assert model.backbone.embed_dims == [96, 192, 384, 768]
    assert [conv.conv.in_channels for conv in model.neck.lateral_convs] == \
        [96, 192, 384, 768]


def test_import_without_task_libraries():
    """``import l2vit_mm`` works when mmdet and mmseg are absent."""
    code = ('import sys; sys.modules["mmdet"] = None; '
            'sys.modules["mmseg"] = None; import l2vit_mm; '
            'from l2vit_mm.registry import registered_libraries; '
            'print(registered_libraries())')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['mmpretrain']"


def test_a_broken_task_library_is_skipped_with_a_warning(tmp_path):
    """An installed mmdet that refuses its mmcv does not break the import."""
    (tmp_path / 'mmdet').mkdir()
    (tmp_path / 'mmdet' / '__init__.py').write_text(
        "raise AssertionError('MMCV==2.2.0 is used but incompatible')\n")
    code = ('import l2vit_mm; '
            'from l2vit_mm.registry import registered_libraries; '
            'print(registered_libraries())')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True,
                            env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['mmpretrain', 'mmseg']"
    assert ('mmdet is installed but cannot be imported (AssertionError: '
            'MMCV==2.2.0 is used but incompatible); l2vit_mm models are not '
            'registered in mmdet') in result.stderr
