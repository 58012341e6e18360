# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Every COCO / ADE20K config loads, builds, and follows the recipe doc."""
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import l2vit_mm  # noqa: F401 (registers L2ViT)
from l2vit_mm.models import L2ViT
from tests.conftest import REPO, SHARED
from tests.test_model_index import load_models

CONFIGS = REPO / 'configs'
DET = sorted(
    str(p.relative_to(CONFIGS)) for folder in ('mask_rcnn', 'retinanet',
                                               'cascade_rcnn')
    for p in (CONFIGS / folder).glob('*.py'))
SEG = sorted(
    str(p.relative_to(CONFIGS)) for p in (CONFIGS / 'upernet').glob('*.py'))
DEMO = {
    'demo/mask-rcnn_l2vit-demo_fpn_digit-scenes.py':
    'mask_rcnn/mask-rcnn_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py',
    'demo/upernet_l2vit-demo_digit-scenes.py':
    'upernet/l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
}
VARIANTS = {'t': 'tiny', 's': 'small', 'b': 'base'}


def recipe_drop_path():
    """Read the detection drop-path table of the recipe doc.

    Returns:
        dict: ``(schedule, variant) -> rate``, e.g. ``('1x', 't') -> 0.1``.
    """
    text = (SHARED / 'docs' / 'l2vit-recipes.md').read_text()
    rates = {}
    for schedule in ('1x', '3x'):
        row = re.search(
            rf'\| Mask R-CNN / RetinaNet {schedule} \|([^\n]+)\|', text)
        values = [float(v) for v in row.group(1).split('|')]
        rates.update({(schedule, v): r for v, r in zip('tsb', values)})
    return rates


def variant_of(name):
    """Return the variant letter of a config file name."""
    match = re.search(r'l2vit-(t|s|b|tiny|small|base)-', name)
    return match.group(1)[0]


def build(cfg):
    """Build the model of a config without loading pre-trained weights."""
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model.get('module', cfg.model)
    model_cfg.backbone.init_cfg = None
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS.build(cfg.model)


def assert_metafile_params(name, model):
    """The model index lists the parameter count of the built model."""
    entries = {m['Config']: m for m in load_models()}
    listed = entries[f'configs/{name}']['Metadata']['Parameters']
    assert listed == sum(p.numel() for p in model.parameters()), name


def test_the_family_is_complete():
    names = [Path(n).name for n in DET + SEG]
    for v in 'tsb':
        for sched in ('1x', '3x'):
            assert f'mask-rcnn_l2vit-{v}-p4-w7_fpn_ms-crop-{sched}_coco.py' \
                in names
            assert f'retinanet_l2vit-{v}-p4-w7_fpn_ms-crop-{sched}_coco.py' \
                in names
        assert (f'cascade-mask-rcnn_l2vit-{v}-p4-w7_fpn_4conv1fc-giou_'
                'ms-crop-3x_coco.py') in names
        stem = f'l2vit-{VARIANTS[v]}-p4-w7-in1k-pre_upernet_8xb2-160k_' \
            'ade20k-512x512'
        assert f'{stem}.py' in names and f'{stem}-ms-flip.py' in names
    assert len(names) == 21


@pytest.mark.parametrize('name', DET)
def test_detection_recipe(name):
    cfg = Config.fromfile(CONFIGS / name)
    v = variant_of(name)
    arch = L2ViT.parse_arch(VARIANTS[v])
    backbone = cfg.model.backbone
    assert backbone.type == 'L2ViT' and backbone.arch == VARIANTS[v]
    assert backbone.window_size == 7
    schedule = '3x' if '-3x_' in name else '1x'
    assert backbone.drop_path_rate == recipe_drop_path()[(schedule, v)]
    assert backbone.init_cfg == dict(
        type='Pretrained',
        checkpoint=f'checkpoints/l2vit-{VARIANTS[v]}_in1k.pth',
        prefix='backbone.')
    # Mask R-CNN / Cascade: FPN on the 4 stages; RetinaNet: stages 2-4
    # with the extra levels from the FPN input.
    if name.startswith('retinanet'):
        assert backbone.out_indices == (1, 2, 3)
        assert cfg.model.neck.start_level == 0
        assert cfg.model.neck.add_extra_convs == 'on_input'
    else:
        assert backbone.out_indices == (0, 1, 2, 3)
    assert cfg.model.neck.type == 'FPN'
    assert cfg.model.neck.out_channels == 256
    assert cfg.model.neck.num_outs == 5
    assert cfg.model.neck.in_channels == [
        arch['embed_dims'][i] for i in backbone.out_indices
    ]
    # AdamW 1e-4, wd 0.05 on all parameters, no clipping, no AMP, batch 16.
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.get('clip_grad') is None
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.auto_scale_lr.base_batch_size == 16
    epochs, milestones = (12, [8, 11]) if schedule == '1x' else (36,
                                                                 [27, 33])
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[-1].milestones == milestones
    # Flip, then multi-scale resize or resize + crop + multi-scale resize.
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline][2:] == [
        'RandomFlip', 'RandomChoice', 'PackDetInputs'
    ]
    scales = [(s, 1333) for s in range(480, 801, 32)]
    multi, crop = pipeline[3].transforms
    assert multi[0].scales == scales and multi[0].keep_ratio
    assert crop[0].scales == [(400, 1333), (500, 1333), (600, 1333)]
    assert crop[1].crop_type == 'absolute_range'
    assert crop[1].crop_size == (384, 600)
    assert crop[2].scales == scales
    assert cfg.model.data_preprocessor.pad_size_divisor == 32
    model = build(cfg)
    assert model.backbone.embed_dims == arch['embed_dims']
    assert_metafile_params(name, model)


def test_ms_flip_test_scales_are_relative_to_the_single_scale_test(
        tmp_path):
    """As the authors' mmseg 0.x --aug-test: ratio 1.0 is the single-scale
    test size (fit into 2048x512), not the original image."""
    import cv2
    import numpy as np
    from mmcv.transforms import Compose
    init_default_scope('mmseg')
    name = 'l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
    single = Config.fromfile(CONFIGS / 'upernet' / name)
    multi = Config.fromfile(CONFIGS / 'upernet' /
                            name.replace('.py', '-ms-flip.py'))
    cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((768, 1024, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'seg.png'), np.zeros((768, 1024), np.uint8))
    sample = dict(
        img_path=str(tmp_path / 'img.png'),
        seg_map_path=str(tmp_path / 'seg.png'),
        reduce_zero_label=True,
        seg_fields=[])
    one = Compose(single.test_dataloader.dataset.pipeline)(dict(sample))
    views = Compose(multi.test_dataloader.dataset.pipeline)(dict(sample))
    sizes = [tuple(x.shape[1:]) for x in views['inputs']]
    assert tuple(one['inputs'].shape[1:]) == (512, 683)
    assert sizes[::2] == sizes[1::2] == [(256, 341), (384, 512), (512, 683),
                                         (640, 853), (768, 1024), (896, 1195)]
    assert [m.flip for m in views['data_samples'][:2]] == [False, True]


@pytest.mark.parametrize('path', [
    *(CONFIGS / name for name in SEG if not name.endswith('-ms-flip.py')),
    CONFIGS / 'demo' / 'upernet_l2vit-demo_digit-scenes.py'
])
def test_seg_tta_scales_are_around_the_test_scale(path):
    """--tta resizes by ratios of the config's own test scale (the demo
    config's scenes are tested at 512x128, not at ADE20K's 2048x512)."""
    cfg = Config.fromfile(path)
    test_scale, = [t['scale'] for t in cfg.test_dataloader.dataset.pipeline
                   if t['type'] == 'Resize']
    tta, = [t for t in cfg.tta_pipeline if t['type'] == 'TestTimeAug']
    scales = [t['scale'] for t in tta.transforms[0]]
    assert test_scale in scales
    assert min(scales) == (test_scale[0] // 2, test_scale[1] // 2)
    flips = [t for views in tta.transforms for t in views
             if t['type'] == 'RandomFlip']
    assert not flips if 'demo' in path.name else len(flips) == 2


@pytest.mark.parametrize('name', SEG)
def test_segmentation_recipe(name):
    cfg = Config.fromfile(CONFIGS / name)
    v = variant_of(name)
    arch = L2ViT.parse_arch(VARIANTS[v])
    if name.endswith('-ms-flip.py'):
        assert cfg.model.type == 'SegTTAModel'
        single = Config.fromfile(CONFIGS / name.replace('-ms-flip', ''))
        assert cfg.model.module == single.model
        tta = cfg.test_dataloader.dataset.pipeline[1]
        assert tta.type == 'TestTimeAug'
        assert [t.scale for t in tta.transforms[0]] == [
            (int(2048 * r), int(512 * r))
            for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
        ]
        assert [t.prob for t in tta.transforms[1]] == [0., 1.]
        model = build(cfg)
        assert model.module.backbone.embed_dims == arch['embed_dims']
        assert_metafile_params(name, model)
        return
    model_cfg = cfg.model
    backbone = model_cfg.backbone
    assert backbone.type == 'L2ViT' and backbone.arch == VARIANTS[v]
    assert backbone.window_size == 7
    assert backbone.drop_path_rate == 0.3
    assert backbone.out_indices == (0, 1, 2, 3)
    assert backbone.init_cfg.type == 'Pretrained'
    assert backbone.init_cfg.prefix == 'backbone.'
    assert backbone.init_cfg.checkpoint == \
        f'checkpoints/l2vit-{VARIANTS[v]}_in1k.pth'
    decode, aux = model_cfg.decode_head, model_cfg.auxiliary_head
    assert decode.type == 'UPerHead' and decode.pool_scales == (1, 2, 3, 6)
    assert decode.channels == 512 and decode.num_classes == 150
    assert decode.in_channels == arch['embed_dims']
    assert aux.type == 'FCNHead' and aux.in_index == 2
    assert aux.in_channels == arch['embed_dims'][2]
    assert aux.channels == 256 and aux.loss_decode.loss_weight == 0.4
    assert decode.norm_cfg.type == aux.norm_cfg.type == 'SyncBN'
    assert model_cfg.test_cfg.mode == 'whole'
    assert cfg.crop_size == (512, 512)
    assert model_cfg.data_preprocessor.size == (512, 512)
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR',
                                                              1e-6, 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end) == (
        'PolyLR', 1.0, 0.0, 1500, 160000)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    model = build(cfg)
    assert model.backbone.embed_dims == arch['embed_dims']
    assert_metafile_params(name, model)


@pytest.mark.parametrize('name', sorted(DEMO))
def test_demo_configs_keep_the_recipe_structure(name):
    cfg = Config.fromfile(CONFIGS / name)
    real = Config.fromfile(CONFIGS / DEMO[name])
    assert cfg.model.type == real.model.type
    assert cfg.model.backbone.type == 'L2ViT'
    assert cfg.model.backbone.init_cfg is None  # trained from scratch
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.weight_decay == \
        real.optim_wrapper.optimizer.weight_decay
    assert [s.type for s in cfg.param_scheduler] == \
        [s.type for s in real.param_scheduler]
    build(cfg)


def tiny_model_cfg(name, arch):
    """A det/seg config's model with a reduced L2ViT and thin heads."""
    cfg = Config.fromfile(CONFIGS / name)
    model = cfg.model
    model.backbone.update(arch=arch, window_size=4, init_cfg=None)
    dims = [arch['embed_dims'][i] for i in model.backbone.out_indices]
    if 'neck' in model:
        model.neck.in_channels = dims
    else:
        model.decode_head.in_channels = dims
        model.auxiliary_head.in_channels = dims[2]
    return cfg


# Head keys that mmdet 2.x / mmseg 0.x models of these configs have.
MM2X_HEAD_KEYS = {
    'mask_rcnn/mask-rcnn_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py': [
        'neck.lateral_convs.0.conv.weight', 'rpn_head.rpn_conv.weight',
        'roi_head.bbox_head.fc_cls.weight',
        'roi_head.mask_head.conv_logits.weight'
    ],
    'retinanet/retinanet_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py': [
        'neck.fpn_convs.0.conv.weight', 'bbox_head.cls_convs.0.conv.weight',
        'bbox_head.retina_cls.weight'
    ],
    'upernet/l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py': [
        'decode_head.psp_modules.0.1.conv.weight',
        'decode_head.fpn_bottleneck.conv.weight',
        'decode_head.conv_seg.weight', 'auxiliary_head.conv_seg.weight'
    ],
}


def authors_mm2x_backbone(official, out_indices):
    """The authors' dense-task backbone as an mmdet 2.x / mmseg 0.x
    checkpoint holds it: their keys under ``backbone.``, no classifier head
    or final ``norm``, a ``norm{i}`` for each of the model's out indices."""
    dropped = {f'norm{i}.' for i in range(4)} - {
        f'norm{i}.' for i in out_indices}
    return {
        'backbone.' + k: v
        for k, v in official['det_state_dict'].items()
        if not k.startswith(tuple(dropped))
    }


@pytest.mark.parametrize('name', sorted(MM2X_HEAD_KEYS))
def test_converter_loads_mmdet2_mmseg0_checkpoints(name, official,
                                                   official_arch, tmp_path):
    """An mmdet 2.x / mmseg 0.x checkpoint of the authors (``state_dict``
    with their backbone keys under ``backbone.``, neck and head keys,
    ``meta.CLASSES``) converts into one that loads strictly into the mmdet
    3.x / mmseg 1.x model, each of the authors' weights in its parameter.
    The neck and head keys are the 3.x model's: their names did not change
    between these versions (``MM2X_HEAD_KEYS`` lists some 2.x names)."""
    from mmengine.runner import load_checkpoint
    cfg = tiny_model_cfg(name, official_arch)
    backbone = authors_mm2x_backbone(official, cfg.model.backbone.out_indices)
    torch.manual_seed(1)
    heads = {
        k: torch.randn_like(v.float()).to(v.dtype)
        for k, v in build(cfg).state_dict().items()
        if not k.startswith('backbone.')
    }
    assert set(MM2X_HEAD_KEYS[name]) <= heads.keys()
    src, dst = tmp_path / 'old.pth', tmp_path / 'new.pth'
    torch.save(
        dict(state_dict={**backbone, **heads}, meta=dict(CLASSES=('a', 'b'))),
        src)
    convert = load_converter()
    assert convert.main([str(src), str(dst)]) == 0
    fresh = build(tiny_model_cfg(name, official_arch))
    load_checkpoint(fresh, str(dst), strict=True)
    loaded = fresh.state_dict()
    for key, value in backbone.items():
        assert torch.equal(loaded[key], value), key
    for key, value in heads.items():
        assert torch.equal(loaded[key], value), key


def load_converter():
    """Import tools/model_converters/l2vit2mmpretrain.py."""
    import importlib.util
    path = REPO / 'tools' / 'model_converters' / 'l2vit2mmpretrain.py'
    spec = importlib.util.spec_from_file_location('l2vit2mmpretrain', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretrained_init_cfg_loads_the_converted_backbone(
        official, official_arch, tmp_path):
    """The authors' dense-task weights, converted, reach the backbone
    through ``init_cfg=dict(type='Pretrained', prefix='backbone.')``."""
    from l2vit_mm.converters import convert_l2vit
    from l2vit_mm.utils import check_backbone
    path = tmp_path / 'converted.pth'
    torch.save(
        dict(state_dict=convert_l2vit(official['det_state_dict'])), path)
    cfg = tiny_model_cfg(
        'mask_rcnn/mask-rcnn_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py',
        official_arch)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.')
    check_backbone(cfg)  # the arch of the file matches the config
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    key = 'stages.0.0.attn.qkv.weight'
    assert not torch.equal(model.backbone.state_dict()[key],
                           official['det_state_dict'][key])
    model.init_weights()
    for key in (key, 'stages.1.1.attn.temperature', 'norm2.weight'):
        assert torch.equal(model.backbone.state_dict()[key],
                           official['det_state_dict'][key]), key


@pytest.mark.parametrize('name', [
    'mask_rcnn/mask-rcnn_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py',
    'upernet/l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
])
def test_classifier_final_norm_stays_out_of_dense_backbones(
        name, official, official_arch, tmp_path):
    """The authors' detection and segmentation models drop the classifier's
    final ``norm``: their ``norm0`` .. ``norm3`` start fresh, while every
    other weight of the ImageNet checkpoint (converted) is loaded."""
    from l2vit_mm.converters import convert_l2vit
    path = tmp_path / 'in1k.pth'
    torch.save(
        dict(state_dict=convert_l2vit(official['cls_state_dict'])), path)
    cfg = tiny_model_cfg(name, official_arch)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.')
    init_default_scope(cfg.default_scope)
    registry = __import__(f'{cfg.default_scope}.registry',
                          fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model)
    model.init_weights()
    state = model.backbone.state_dict()
    for key in ('stages.0.0.attn.qkv.weight', 'stages.1.1.attn.temperature',
                'downsample_layers.0.norm.weight'):
        assert torch.equal(state[key], official['cls_state_dict'][key]), key
    assert not torch.equal(state['norm3.weight'],
                           official['cls_state_dict']['norm.weight'])
    for i in model.backbone.out_indices:
        assert torch.equal(state[f'norm{i}.weight'],
                           torch.ones_like(state[f'norm{i}.weight']))
        assert torch.equal(state[f'norm{i}.bias'],
                           torch.zeros_like(state[f'norm{i}.bias']))


def test_classifier_keeps_its_final_norm(official, official_arch):
    """An ImageNet classifier (last stage only) loads ``norm3``."""
    from l2vit_mm.converters import backbone_weights, convert_l2vit
    converted = convert_l2vit(official['cls_state_dict'])
    backbone = L2ViT(official_arch, out_indices=(3, ))
    backbone.load_state_dict(backbone_weights(converted))
    assert torch.equal(backbone.norm3.weight,
                       official['cls_state_dict']['norm.weight'])
