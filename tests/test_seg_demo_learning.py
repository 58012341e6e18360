# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The UperNet demo config leaves the all-background state that mmseg's
default classifier initialisation locks a from-scratch run into."""
import inspect

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from l2vit_mm.demo import make_ade_scenes
from tests.conftest import REPO

DEMO_SEG = REPO / 'configs' / 'demo' / 'upernet_l2vit-demo_digit-scenes.py'
MMSEG_CLASSIFIER_INIT = inspect.signature(
    BaseDecodeHead).parameters['init_cfg'].default
ITERS = 100


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade_scenes_learning')
    make_ade_scenes(str(root), num_train=200, num_val=20)
    return str(root)


def demo_cfg(root, work_dir, classifier_init=None):
    cfg = Config.fromfile(str(DEMO_SEG))
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = root
        loader.num_workers = 0
        loader.persistent_workers = False
    if classifier_init is not None:
        cfg.model.decode_head.init_cfg = classifier_init
        cfg.model.auxiliary_head.init_cfg = classifier_init
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=ITERS, val_interval=10**6)
    cfg.param_scheduler[1].end = ITERS
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = ITERS
    cfg.work_dir = str(work_dir)
    return cfg


def digit_pixels_called_digits(runner):
    """Share of validation digit pixels predicted as any digit class."""
    model = runner.model.eval()
    hits = total = 0
    with torch.no_grad():
        for batch in runner.build_dataloader(runner.cfg.val_dataloader):
            for sample in model.test_step(batch):
                label = sample.gt_sem_seg.data[0]
                pred = sample.pred_sem_seg.data[0]
                digits = (label > 0) & (label < 255)
                hits += int((pred[digits] > 0).sum())
                total += int(digits.sum())
    assert total > 0
    return hits / total


def test_demo_classifier_init_is_wider_than_mmseg_default():
    assert MMSEG_CLASSIFIER_INIT['std'] == 0.01
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(DEMO_SEG))
    model = MODELS.build(cfg.model)
    model.init_weights()
    for head in (model.decode_head, model.auxiliary_head):
        assert 0.08 < head.conv_seg.weight.std().item() < 0.12
        assert head.conv_seg.bias.abs().max().item() == 0


def test_demo_heads_predict_digits_after_100_iterations(ade_root, tmp_path):
    runner = Runner.from_cfg(demo_cfg(ade_root, tmp_path / 'demo'))
    runner.train()
    assert digit_pixels_called_digits(runner) > 0.5


def test_mmseg_default_classifier_init_predicts_only_background(
        ade_root, tmp_path):
    # The failure the demo's init guards against: with std 0.01 (almost) no
    # digit pixel is predicted as a digit.
    runner = Runner.from_cfg(
        demo_cfg(ade_root, tmp_path / 'default', MMSEG_CLASSIFIER_INIT))
    runner.train()
    assert digit_pixels_called_digits(runner) < 0.05
