# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Every classification config loads, builds, and has the recipe values."""
import glob

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from tests.conftest import REPO

CLS_CONFIGS = sorted(glob.glob(str(REPO / 'configs' / 'l2vit' / '*.py')))


def load(name):
    return Config.fromfile(str(REPO / 'configs' / 'l2vit' / name))


def test_every_classification_config_builds():
    assert len(CLS_CONFIGS) == 6
    init_default_scope('mmpretrain')
    for path in CLS_CONFIGS:
        cfg = Config.fromfile(path)
        assert cfg.default_scope == 'mmpretrain'
        assert cfg.custom_imports.imports == ['l2vit_mm']
        model = MODELS.build(cfg.model)
        assert type(model.backbone).__name__ == 'L2ViT', path
        # As the authors' code: the EMA averages BatchNorm statistics too,
        # and the best checkpoint (EMA top-1) and the last three are kept.
        # (The 22K pre-training keeps no EMA, as the authors' runs.)
        ema = [] if path.endswith('_in21k.py') else [('EMAHook', True)]
        assert [(h.type, h.update_buffers)
                for h in cfg.custom_hooks] == ema, path
        checkpoint = cfg.default_hooks.checkpoint
        assert (checkpoint.interval, checkpoint.max_keep_ckpts,
                checkpoint.save_best, checkpoint.rule) == (
                    1, 3, 'accuracy/top1', 'greater'), path


@pytest.mark.parametrize('arch,drop_path', [('tiny', 0.2), ('small', 0.3),
                                            ('base', 0.3)])
def test_in1k_recipe(arch, drop_path):
    cfg = load(f'l2vit-{arch}_8xb128-acc4_in1k.py')
    assert cfg.model.backbone.arch == arch
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.model.backbone.get('window_size', 7) == 7
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW'
    assert opt.optimizer.lr == 4e-3
    assert opt.optimizer.weight_decay == 0.05
    assert opt.optimizer.betas == (0.9, 0.999)
    assert opt.optimizer.eps == 1e-8
    assert opt.paramwise_cfg == dict(flat_decay_mult=0.0, bias_decay_mult=0.0)
    assert opt.get('clip_grad') is None
    assert cfg.train_dataloader.batch_size * 8 * opt.accumulative_counts \
        == 4096
    assert cfg.auto_scale_lr.base_batch_size == 4096
    assert cfg.train_cfg.max_epochs == 300
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 20)
    assert (cosine.type, cosine.begin, cosine.eta_min) == \
        ('CosineAnnealingLR', 20, 1e-6)
    ema, = cfg.custom_hooks
    assert (ema.type, ema.momentum, ema.interval) == ('EMAHook', 1e-4, 4)
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert [a['type'] for a in cfg.model.train_cfg.augments] == \
        ['Mixup', 'CutMix']
    assert [a['alpha'] for a in cfg.model.train_cfg.augments] == [0.8, 1.0]
    pipeline = {s['type']: s for s in cfg.train_dataloader.dataset.pipeline}
    assert pipeline['RandAugment']['magnitude_level'] == 9
    assert pipeline['RandAugment']['magnitude_std'] == 0.5
    assert pipeline['RandomErasing']['erase_prob'] == 0.25
    assert pipeline['RandomResizedCrop']['interpolation'] == 'bicubic'
    test = {s['type']: s for s in cfg.test_dataloader.dataset.pipeline}
    assert test['ResizeEdge']['scale'] == 256
    assert test['CenterCrop']['crop_size'] == 224
    assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'


def test_no_decay_rule_matches_authors():
    """1-D parameters and biases get no decay; the 3-D temperature does."""
    from mmengine.optim import build_optim_wrapper
    cfg = load('l2vit-tiny_8xb128-acc4_in1k.py')
    init_default_scope('mmpretrain')
    cfg.model.backbone.arch = dict(
        embed_dims=[16, 32, 64, 128], depths=[2, 2, 2, 2],
        num_heads=[1, 2, 4, 8])
    cfg.model.head.in_channels = 128
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[id(p)] = group['weight_decay']
    for name, p in model.named_parameters():
        expected = 0.0 if p.ndim == 1 or name.endswith('.bias') else 0.05
        assert decay[id(p)] == expected, name
    assert decay[id(model.backbone.stages[0][1].attn.temperature)] == 0.05


def test_in21k_recipe():
    cfg = load('l2vit-base_8xb128_in21k.py')
    assert cfg.model.head.num_classes == 21841
    assert cfg.data_preprocessor.num_classes == 21841
    assert cfg.model.backbone.drop_path_rate == 0.2
    assert cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.train_dataloader.batch_size * 8 == 1024
    assert cfg.optim_wrapper.accumulative_counts == 1
    assert cfg.train_cfg.max_epochs == 90
    assert cfg.train_cfg.val_interval == 10
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 5 and warmup.start_factor * 1e-3 == \
        pytest.approx(1e-6)
    assert cosine.eta_min == 1e-5
    assert cfg.train_dataloader.dataset.type == 'CustomDataset'
    assert cfg.train_dataloader.dataset.data_prefix == 'train'


@pytest.mark.parametrize('name,window,size', [
    ('l2vit-base_in21k-pre_8xb64-acc2_in1k.py', 7, 224),
    ('l2vit-base_in21k-pre_8xb64-acc2_in1k-384px.py', 12, 384),
])
def test_in21k_to_in1k_recipe(name, window, size):
    cfg = load(name)
    assert cfg.model.backbone.get('window_size', 7) == window
    assert cfg.model.backbone.drop_path_rate == 0.2
    assert cfg.model.head.num_classes == 1000
    assert cfg.model.init_cfg.type == 'Pretrained'
    assert cfg.model.init_cfg.checkpoint.endswith('in21k-cut1k.pth')
    opt = cfg.optim_wrapper
    assert (opt.optimizer.lr, opt.optimizer.weight_decay) == (4e-5, 1e-8)
    assert cfg.train_dataloader.batch_size * 8 * opt.accumulative_counts \
        == 1024
    assert cfg.train_cfg.max_epochs == 30
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 5 and warmup.start_factor * 4e-5 == \
        pytest.approx(4e-8)
    assert cosine.eta_min == 4e-7
    assert cfg.custom_hooks[0].type == 'EMAHook'
    train = {s['type']: s for s in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResizedCrop']['scale'] == size
    test = [s['type'] for s in cfg.test_dataloader.dataset.pipeline]
    assert ('CenterCrop' in test) == (size == 224)


def test_imagenet_folder_layout_loads(tmp_path):
    """data/imagenet/{train,val}/<wnid>/<image> (the authors' layout) is read
    by the recipe's ImageNet dataset without annotation files."""
    import numpy as np
    from mmpretrain.registry import DATASETS
    from PIL import Image
    wnids = [f'n{index:08d}' for index in range(1000)]
    for split in ('train', 'val'):
        for label, wnid in enumerate(wnids):
            folder = tmp_path / split / wnid
            folder.mkdir(parents=True)
            pixels = np.full((40, 48, 3), label % 256, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f'{wnid}_0.JPEG')
    init_default_scope('mmpretrain')
    cfg = load('l2vit-tiny_8xb128-acc4_in1k.py')
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(tmp_path)
        dataset = DATASETS.build(loader.dataset)
        assert len(dataset) == 1000
        sample = dataset[7]
        assert sample['data_samples'].gt_label.tolist() == [7]
        assert tuple(sample['inputs'].shape) == (3, 224, 224)


def test_layer_wise_lr_decay_on_the_fine_tuning_config():
    """The README's layer-decay options on a recipe: mmpretrain's
    constructor asks L2ViT for each parameter's depth (a block per layer,
    as for Swin) and keeps the recipe's weight-decay rules."""
    from mmengine.optim import build_optim_wrapper
    from tests.test_backbone import TINY_ARCH
    cfg = load('l2vit-base_in21k-pre_8xb64-acc2_in1k.py')
    constructor = 'LearningRateDecayOptimWrapperConstructor'
    cfg.merge_from_dict({
        'optim_wrapper.constructor': constructor,
        'optim_wrapper.paramwise_cfg.layer_decay_rate': 0.5,
        'model.backbone.arch': dict(_delete_=True, **TINY_ARCH),
        'model.head.in_channels': 128,
    })
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    groups = {
        id(p): group
        for group in build_optim_wrapper(model, cfg.optim_wrapper)
        .optimizer.param_groups for p in group['params']
    }
    assert len(groups) == len(list(model.parameters()))
    backbone, lr = model.backbone, cfg.optim_wrapper.optimizer.lr
    # 8 blocks + stem + last: depths 0..9, lr scaled by 0.5 ** (9 - depth).
    expected = {
        backbone.downsample_layers[0].proj.proj[0].weight: 0.5**9,
        backbone.stages[0][0].attn.qkv.weight: 0.5**8,
        backbone.stages[0][1].local_mp.bn.weight: 0.5**7,
        backbone.downsample_layers[1].proj.weight: 0.5**7,
        backbone.stages[1][0].mlp.fc1.bias: 0.5**6,
        backbone.stages[3][1].attn.temperature: 0.5,
        backbone.norm3.weight: 1.,
        model.head.fc.weight: 1.,
    }
    for param, scale in expected.items():
        assert groups[id(param)]['lr'] == pytest.approx(lr * scale)
    decay = cfg.optim_wrapper.optimizer.weight_decay
    assert groups[id(backbone.stages[3][1].attn.temperature)][
        'weight_decay'] == decay
    assert groups[id(backbone.stages[1][0].mlp.fc1.bias)]['weight_decay'] == 0
