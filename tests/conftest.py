# Copyright (c) l2vit_mm contributors. All rights reserved.
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('L2VIT_SHARED_DIR', REPO.parent / 'shared'))
FIXTURE = SHARED / 'fixtures' / 'l2vit_official_small.pth'

# The reference port lives beside the benchmark, outside the package.
sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope='session')
def official():
    """The authors' weights, inputs and outputs for a reduced L2ViT."""
    assert FIXTURE.is_file(), (
        f'parity fixture missing: {FIXTURE} (set L2VIT_SHARED_DIR to the '
        'folder that holds fixtures/l2vit_official_small.pth)')
    return torch.load(FIXTURE, map_location='cpu', weights_only=False)


@pytest.fixture(scope='session')
def official_arch(official):
    """The fixture's architecture as an ``L2ViT`` arch dict."""
    arch = official['arch']
    return dict(
        embed_dims=list(arch['dims']),
        depths=list(arch['depths']),
        num_heads=list(arch['num_heads']))


@pytest.fixture
def official_backbone(official, official_arch):
    """The fixture's dense-task weights (authors', trained magnitudes) in
    ``L2ViT`` with out indices 0-3, through the converter; eval mode."""
    from l2vit_mm import L2ViT
    from l2vit_mm.converters import backbone_weights, convert_l2vit
    model = L2ViT(
        official_arch,
        window_size=official['arch']['window_size'],
        out_indices=(0, 1, 2, 3))
    converted = convert_l2vit(official['det_state_dict'])
    model.load_state_dict(backbone_weights(converted), strict=True)
    return model.eval()


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """The classification demo's digits in the ImageNet folder layout."""
    from l2vit_mm.demo import make_digits_imagenet
    root = tmp_path_factory.mktemp('digits')
    make_digits_imagenet(str(root))
    return str(root)


@pytest.fixture(autouse=True)
def isolated_default_scope():
    """Start every test without an mmengine default scope.

    The last ``DefaultScope`` created in the process decides where registries
    look; without this, a test that built an mmseg runner would make a later
    mmpretrain test search mmseg's transforms.
    """
    from mmengine.registry import DefaultScope
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


def tool_error(tool, error, *argv):
    """Run a tool's ``main`` (``tools/train.py``, ``tools/test.py``) and
    return the message of the ``error`` it exits with, as one line
    ``error: <message>``.

    Args:
        tool (module): The tool's module.
        error (type): The exception its check raises.
        *argv: Its arguments.

    Returns:
        str: The message.
    """
    with pytest.raises(SystemExit) as info:
        tool.main([str(a) for a in argv])
    cause = info.value.__context__
    assert isinstance(cause, error)
    assert str(info.value) == f'error: {cause}'
    return str(cause)


def run_tool(tool, *args):
    """Run ``tools/<tool>`` in a subprocess from the repository root.

    Args:
        tool (str): The script under ``tools/``, e.g. ``'train.py'``.
        *args: Its arguments.

    Returns:
        str: Its stdout and stderr; a non-zero exit fails the test with
        their ends.
    """
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / tool), *map(str, args)],
        capture_output=True, text=True, cwd=str(REPO))
    assert result.returncode == 0, \
        result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr
