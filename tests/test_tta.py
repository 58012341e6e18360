# Copyright (c) l2vit_mm contributors. All rights reserved.
"""``tools/test.py --tta`` and ``--show`` for the three libraries."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import tools.test as test_tool
from l2vit_mm.utils import merge_test_args
from tests.test_preflight_checks import CONFIGS, DIGITS, SEG_DEMO, UPERNET

DET_DEMO = CONFIGS / 'demo' / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py'
RETINANET = (CONFIGS / 'retinanet' /
             'retinanet_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py')
UPERNET_MS = UPERNET.with_name(UPERNET.stem + '-ms-flip.py')


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / 'model.pth'
    torch.save({}, path)
    return path


def merged_test_cfg(config, checkpoint, *flags, edit=None):
    """``tools/test.py`` flags merged into ``config``, after ``edit(cfg)``."""
    args = test_tool.parse_args([str(config), str(checkpoint), *flags])
    cfg = Config.fromfile(args.config)
    if edit is not None:
        edit(cfg)
    return merge_test_args(cfg, args)


def run_tta(cfg, image, **sample):
    """Build ``cfg.model`` and run its ``test_step`` on the views that
    ``cfg``'s test pipeline makes of ``image``."""
    from mmcv.transforms import Compose
    from mmengine.registry import MODELS
    init_default_scope(cfg.default_scope)
    views = Compose(cfg.test_dataloader.dataset.pipeline)(
        dict(img_path=str(image), **sample))
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        return views, model.test_step(pseudo_collate([views]))


def test_mmdet_flip_tta_runs(checkpoint, tmp_path):

    def small_test_scale(cfg):
        cfg.test_dataloader.dataset.pipeline[1].scale = (256, 160)

    cfg = merged_test_cfg(RETINANET, checkpoint, '--tta',
                          edit=small_test_scale)
    single = Config.fromfile(RETINANET)
    assert cfg.model.type == 'DetTTAModel'
    assert cfg.model.module == single.model
    tta = cfg.test_dataloader.dataset.pipeline[-1]
    assert tta.type == 'TestTimeAug'
    assert tta.transforms[1][0].type == 'PackDetInputs'

    image = tmp_path / 'scene.jpg'
    cv2.imwrite(str(image), np.full((200, 320, 3), 128, np.uint8))
    views, (result, ) = run_tta(
        cfg, image, img_id=0, instances=[])
    assert [s.flip for s in views['data_samples']] == [True, False]
    assert result.pred_instances.bboxes.shape[1] == 4
    assert len(result.pred_instances) <= 100  # tta_cfg.max_per_img


def test_mmdet_tta_refuses_mask_heads(checkpoint):
    with pytest.raises(ValueError, match='DetTTAModel merges boxes only'):
        merged_test_cfg(DET_DEMO, checkpoint, '--tta')


def test_mmseg_tta_runs_the_configs_tta(checkpoint, tmp_path):
    cfg = merged_test_cfg(SEG_DEMO, checkpoint, '--tta')
    single = Config.fromfile(SEG_DEMO)
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module == single.model
    assert cfg.test_dataloader.dataset.pipeline == single.tta_pipeline

    image, seg_map = tmp_path / 'scene.jpg', tmp_path / 'scene.png'
    cv2.imwrite(str(image), np.full((64, 96, 3), 128, np.uint8))
    cv2.imwrite(str(seg_map), np.zeros((64, 96), np.uint8))
    views, (result, ) = run_tta(
        cfg, image, seg_map_path=str(seg_map), reduce_zero_label=False,
        seg_fields=[])
    scales = len(single.tta_pipeline[1].transforms[0])
    # The demo's TTA: six scales around its 512x128 test scale, no flips.
    assert len(views['inputs']) == scales == 6
    assert tuple(views['inputs'][2].shape[1:]) == (128, 192)
    assert result.pred_sem_seg.data.shape == (1, 64, 96)


def test_mmseg_tta_on_the_recipe_configs(checkpoint):
    # The single-scale UperNet config with --tta tests as its -ms-flip twin.
    cfg = merged_test_cfg(UPERNET, checkpoint, '--tta')
    ms_flip = merged_test_cfg(UPERNET_MS, checkpoint)
    assert (cfg.model.type, cfg.model.module) == (ms_flip.model.type,
                                                  ms_flip.model.module)
    assert cfg.test_dataloader == ms_flip.test_dataloader
    # An -ms-flip config already tests with TTA: --tta keeps it.
    assert merged_test_cfg(UPERNET_MS, checkpoint, '--tta').model == \
        ms_flip.model

    def drop_tta_pipeline(cfg):
        cfg.pop('tta_pipeline')

    with pytest.raises(ValueError) as info:
        merged_test_cfg(UPERNET, checkpoint, '--tta', edit=drop_tta_pipeline)
    assert str(info.value) == ('--tta needs tta_pipeline in the config '
                               '(mmseg has no default)')


def test_mmpretrain_flip_tta(checkpoint):
    cfg = merged_test_cfg(DIGITS, checkpoint, '--tta')
    single = Config.fromfile(DIGITS)
    assert cfg.model.type == 'mmpretrain.AverageClsScoreTTA'
    assert cfg.model.module == single.model
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert pipeline[:-1] == single.test_dataloader.dataset.pipeline[:-1]
    assert [t.prob for t in pipeline[-1].transforms[0]] == [1., 0.]
    assert pipeline[-1].transforms[1] == [
        single.test_dataloader.dataset.pipeline[-1]
    ]


def test_tta_pipeline_goes_to_the_wrapped_datasets(checkpoint):
    """A wrapped test set: the flip pipeline is built from and given to
    the datasets that read data, not to the wrapper."""

    def wrap(cfg):
        inner = cfg.test_dataloader.dataset
        cfg.test_dataloader.dataset = dict(
            type='ConcatDataset',
            datasets=[dict(type='RepeatDataset', times=2, dataset=inner),
                      inner])

    cfg = merged_test_cfg(DIGITS, checkpoint, '--tta', edit=wrap)
    concat = cfg.test_dataloader.dataset
    assert 'pipeline' not in concat
    assert 'pipeline' not in concat.datasets[0]
    for leaf in (concat.datasets[0].dataset, concat.datasets[1]):
        assert leaf.pipeline == cfg.tta_pipeline
    assert cfg.tta_pipeline[-1].type == 'TestTimeAug'


@pytest.mark.parametrize('config,expected', [
    (DIGITS, dict(enable=True, show=True, wait_time=0.5)),
    (DET_DEMO, dict(draw=True, show=True, wait_time=0.5)),
    (SEG_DEMO, dict(draw=True, interval=1, show=True, wait_time=0.5)),
])
def test_show_flag(checkpoint, config, expected):
    cfg = merged_test_cfg(config, checkpoint, '--show', '--wait-time', '0.5')
    hook = cfg.default_hooks.visualization
    assert {k: hook.get(k) for k in expected} == expected
    assert hook.get('test_out_dir') is None and hook.get('out_dir') is None
    assert cfg.visualizer.get('save_dir') == \
        Config.fromfile(config).visualizer.get('save_dir')

    def drop_hook(cfg):
        cfg.default_hooks.pop('visualization')

    with pytest.raises(ValueError, match='^--show needs default_hooks'):
        merged_test_cfg(config, checkpoint, '--show', edit=drop_hook)
