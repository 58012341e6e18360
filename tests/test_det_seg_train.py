# Copyright (c) l2vit_mm contributors. All rights reserved.
"""A few-iteration train + test of Mask R-CNN, RetinaNet, Cascade Mask R-CNN
and UperNet with a reduced L2ViT through tools/train.py and tools/test.py,
and clear errors (with no work dir left behind) for bad input."""
import glob
import importlib.util
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from l2vit_mm.demo import make_ade_scenes, make_coco_scenes
from tests.conftest import REPO, run_tool, tool_error

CONFIGS = REPO / 'configs'
DEMO_DET = CONFIGS / 'demo' / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py'
DEMO_SEG = CONFIGS / 'demo' / 'upernet_l2vit-demo_digit-scenes.py'
REAL_DET = {
    'mask-rcnn':
    DEMO_DET,
    'retinanet':
    CONFIGS / 'retinanet' / 'retinanet_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py',
    'cascade':
    CONFIGS / 'cascade_rcnn' /
    'cascade-mask-rcnn_l2vit-t-p4-w7_fpn_4conv1fc-giou_ms-crop-3x_coco.py',
}
TINY_ARCH = dict(
    embed_dims=[16, 32, 64, 128], depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 4])
SCENES = dict(num_train=4, num_val=2, image_size=64, max_digits=2)
QUIET = ['train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False',
         'val_dataloader.num_workers=0',
         'val_dataloader.persistent_workers=False',
         'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False']


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco_scenes')
    make_coco_scenes(str(root), **SCENES)
    return str(root)


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade_scenes')
    make_ade_scenes(str(root), **SCENES)
    return str(root)


def det_options(root):
    ann_file = osp.join(root, 'annotations', 'instances_val.json')
    return [
        *(f'{split}_dataloader.dataset.data_root={root}'
          for split in ('train', 'val', 'test')),
        f'val_evaluator.ann_file={ann_file}',
        f'test_evaluator.ann_file={ann_file}', *QUIET
    ]


def seg_options(root):
    return [
        *(f'{split}_dataloader.dataset.data_root={root}'
          for split in ('train', 'val', 'test')), *QUIET
    ]


def tiny_det_config(kind, path):
    """Write a T detection config, reduced, on the demo scene data.

    The model keeps its structure (heads, losses, samplers) with fewer
    channels and RoIs; data settings come from the Mask R-CNN demo config
    (itself the real Mask R-CNN T config with demo sizes).
    """
    cfg = Config.fromfile(REAL_DET[kind])
    demo = Config.fromfile(DEMO_DET)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        cfg[key] = demo[key]
    model = cfg.model
    model.backbone.update(
        arch=TINY_ARCH, window_size=4, drop_path_rate=0.1, init_cfg=None)
    dims = [TINY_ARCH['embed_dims'][i] for i in model.backbone.out_indices]
    model.neck.update(in_channels=dims, out_channels=32)
    if kind == 'retinanet':
        model.bbox_head.update(
            in_channels=32, feat_channels=32, num_classes=10)
        # Untrained focal-loss scores sit near the 0.01 prior.
        model.test_cfg.score_thr = 0.0
        cfg.val_evaluator.metric = cfg.test_evaluator.metric = 'bbox'
    else:
        model.rpn_head.update(in_channels=32, feat_channels=32)
        roi = model.roi_head
        roi.bbox_roi_extractor.out_channels = 32
        roi.mask_roi_extractor.out_channels = 32
        for head in (roi.bbox_head if isinstance(roi.bbox_head, list) else
                     [roi.bbox_head]):
            head.update(
                in_channels=32,
                conv_out_channels=32,
                fc_out_channels=64,
                num_classes=10)
        roi.mask_head.update(
            in_channels=32, conv_out_channels=32, num_classes=10)
        model.train_cfg.rpn_proposal.max_per_img = 100
        rcnn = model.train_cfg.rcnn
        for stage in (rcnn if isinstance(rcnn, list) else [rcnn]):
            stage.sampler.num = 64
        model.test_cfg.rpn.max_per_img = 100
    cfg.dump(str(path))
    return path


@pytest.mark.parametrize('kind', ['mask-rcnn', 'retinanet', 'cascade'])
def test_detection_train_and_test(kind, coco_root, tmp_path):
    config = tiny_det_config(kind, tmp_path / f'{kind}.py')
    work_dir = tmp_path / 'work'
    options = det_options(coco_root)
    run_tool('train.py', config, '--work-dir', work_dir, '--no-validate',
             '--cfg-options', 'train_dataloader.batch_size=2',
             'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1',
             *options)
    assert [osp.basename(p) for p in glob.glob(str(work_dir / '*.pth'))
            ] == ['epoch_1.pth']
    checkpoint = torch.load(
        work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert checkpoint['meta']['iter'] == 2  # 4 scenes, batch 2
    out = tmp_path / 'preds.pkl'
    log = run_tool('test.py', config, work_dir / 'epoch_1.pth',
                   '--work-dir', tmp_path / 'test', '--out', out,
                   '--cfg-options', *options)
    assert 'coco/bbox_mAP' in log
    if kind != 'retinanet':
        assert 'coco/segm_mAP' in log
    assert out.is_file()


def test_segmentation_train_and_test(ade_root, tmp_path):
    work_dir = tmp_path / 'work'
    options = seg_options(ade_root)
    log = run_tool('train.py', DEMO_SEG, '--work-dir', work_dir,
                   '--cfg-options', 'train_dataloader.batch_size=2',
                   'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                   'default_hooks.checkpoint.interval=2', *options)
    # Not distributed: mmengine turns the heads' SyncBN into BN.
    assert 'SyncBatchNorm (SyncBN) layers in the model will be ' \
        'automatically reverted' in log
    assert 'mIoU' in log
    assert [osp.basename(p) for p in glob.glob(str(work_dir / '*.pth'))
            ] == ['iter_2.pth']
    log = run_tool('test.py', DEMO_SEG, work_dir / 'iter_2.pth',
                   '--work-dir', tmp_path / 'test', '--show-dir',
                   tmp_path / 'vis', '--cfg-options', *options)
    assert 'mIoU' in log
    assert glob.glob(str(tmp_path / 'vis' / '**' / '*.png'), recursive=True)


def load_tool(name):
    """Import a script of tools/ as a module."""
    spec = importlib.util.spec_from_file_location(
        f'tools_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_data_is_a_clear_error(coco_root, tmp_path):
    work_dir = tmp_path / 'never'
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'train.py'), str(DEMO_DET),
         '--work-dir', str(work_dir), '--cfg-options',
         f'train_dataloader.dataset.data_root={tmp_path / "no_coco"}'],
        capture_output=True, text=True, cwd=str(REPO))
    assert result.returncode != 0
    assert 'train_dataloader: data root not found' in result.stderr
    assert not work_dir.exists()

    train = load_tool('train')
    message = tool_error(
        train, FileNotFoundError, DEMO_DET, '--work-dir', work_dir,
        '--cfg-options', *det_options(coco_root),
        'train_dataloader.dataset.ann_file=instances_nope.json')
    assert re.search('annotation file not found.*instances_nope', message)
    assert not work_dir.exists()


def test_bad_backbone_is_a_clear_error(ade_root, tmp_path):
    train = load_tool('train')
    work_dir = tmp_path / 'never'
    args = [str(DEMO_SEG), '--work-dir', str(work_dir), '--cfg-options',
            *seg_options(ade_root)]
    message = tool_error(train, ValueError, *args,
                         'model.backbone.arch=huge')
    assert "model.backbone: Unknown L2ViT arch 'huge'" in message

    real = str(CONFIGS / 'upernet' /
               'l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py')
    real_args = [real, '--work-dir', str(work_dir), '--cfg-options',
                 *seg_options(ade_root)]
    message = tool_error(train, FileNotFoundError, *real_args,
                         'model.backbone.init_cfg.checkpoint=no/such.pth')
    assert re.search('pre-trained checkpoint not found.*l2vit2mm', message)

    # A ConvNeXt checkpoint (mmpretrain layout) through Pretrained init.
    convnext = tmp_path / 'convnext.pth'
    torch.save(
        dict(state_dict={
            'backbone.downsample_layers.0.0.weight': torch.zeros(96, 3, 4, 4),
            'backbone.stages.0.0.depthwise_conv.weight': torch.zeros(
                96, 1, 7, 7),
            'head.fc.weight': torch.zeros(1000, 768)
        }), convnext)
    message = tool_error(train, ValueError, *real_args,
                         f'model.backbone.init_cfg.checkpoint={convnext}')
    assert 'is not an L2ViT checkpoint' in message

    # An L2ViT checkpoint of another size.
    from l2vit_mm.models import L2ViT
    small = tmp_path / 'tiny_arch.pth'
    state = {
        'backbone.' + k: v
        for k, v in L2ViT(arch=TINY_ARCH).state_dict().items()
    }
    torch.save(dict(state_dict=state), small)
    message = tool_error(train, ValueError, *real_args,
                         f'model.backbone.init_cfg.checkpoint={small}')
    assert 'holds an L2ViT with' in message
    assert not work_dir.exists()
