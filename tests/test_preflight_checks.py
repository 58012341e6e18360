# Copyright (c) l2vit_mm contributors. All rights reserved.
"""tools/train.py and tools/test.py check a config's files before the runner
exists: a bad path fails with a message that names it and leaves no work
dir behind. Also the merged config of flags that need no training.

Each test runs in an empty folder, so the configs' relative paths
(``data/...``, ``checkpoints/...``, ``./work_dirs``) point into it.
"""
import os

import pytest
import torch
from mmengine.config import Config

import tools.test as test_tool
import tools.train as train_tool
from l2vit_mm.models import L2ViT
from l2vit_mm.utils import (check_backbone, check_data_paths,
                            check_test_checkpoint, merge_test_args,
                            merge_train_args)
from tests.conftest import REPO, tool_error

CONFIGS = REPO / 'configs'
IN1K = CONFIGS / 'l2vit' / 'l2vit-tiny_8xb128-acc4_in1k.py'
IN21K_PRE = CONFIGS / 'l2vit' / 'l2vit-base_in21k-pre_8xb64-acc2_in1k.py'
MASK_RCNN = (CONFIGS / 'mask_rcnn' /
             'mask-rcnn_l2vit-t-p4-w7_fpn_ms-crop-1x_coco.py')
UPERNET = (CONFIGS / 'upernet' /
           'l2vit-tiny-p4-w7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py')
DIGITS = CONFIGS / 'demo' / 'l2vit-demo_digits.py'
SEG_DEMO = CONFIGS / 'demo' / 'upernet_l2vit-demo_digit-scenes.py'
SMALL_ARCH = dict(
    embed_dims=[32, 64, 128, 256], depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
CUT_1K = 'checkpoints/l2vit-base_in21k-cut1k.pth'


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test in an empty folder; return it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_dirs(*paths):
    for path in paths:
        os.makedirs(path, exist_ok=True)


def touch(*paths):
    for path in paths:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'w').close()


def merged_train_cfg(*argv):
    """Parse ``tools/train.py`` arguments and merge them into the config."""
    args = train_tool.parse_args([str(a) for a in argv])
    return merge_train_args(Config.fromfile(args.config), args)


def train_error(error, *argv):
    """Run ``tools/train.py`` and return the error it exits with."""
    return tool_error(train_tool, error, *argv)


def save_built_model(config, path):
    """Save the initial weights of the model a config builds."""
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict()), path)
    return model.state_dict()


def save_classifier(path, head_shape=(1000, 256), backbone_prefix='backbone.'):
    """Save a classifier checkpoint with an L2ViT of ``SMALL_ARCH``."""
    backbone = L2ViT(SMALL_ARCH, window_size=4).state_dict()
    state_dict = {backbone_prefix + k: v for k, v in backbone.items()}
    state_dict['head.fc.weight'] = torch.zeros(head_shape)
    state_dict['head.fc.bias'] = torch.zeros(head_shape[0])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(dict(state_dict=state_dict), path)


def small_in21k_pre_config(folder):
    """The 22K -> 1K config with an L2ViT of ``SMALL_ARCH``."""
    path = folder / 'small_in21k-pre.py'
    path.write_text(
        f'_base_ = [{str(IN21K_PRE)!r}]\n'
        f'model = dict(backbone=dict(arch=dict(_delete_=True, **{SMALL_ARCH}),'
        ' window_size=4), head=dict(in_channels=256))\n')
    return path


def test_imagenet_split_folder_is_checked(in_tmp):
    make_dirs('data/imagenet/val')
    message = train_error(FileNotFoundError, IN1K)
    assert message.startswith('train_dataloader:')
    assert "data_prefix (split='train') folder not found" in message
    assert "'data/imagenet/train'" in message
    assert os.listdir(in_tmp) == ['data']  # no work_dirs/

    make_dirs('data/imagenet/train')
    check_data_paths(merged_train_cfg(IN1K))


def test_mmpretrain_image_folder_is_checked(in_tmp, monkeypatch):
    """A plain-string data_prefix (mmpretrain's CustomDataset, the 22K
    config) is the image folder, joined with data_root unless absolute,
    with ~ expanded."""
    in21k = CONFIGS / 'l2vit' / 'l2vit-base_8xb128_in21k.py'
    make_dirs('data/imagenet21k/val')
    message = train_error(FileNotFoundError, in21k)
    assert message.startswith('train_dataloader: data_prefix folder not '
                              "found: 'data/imagenet21k/train'")
    assert os.listdir(in_tmp) == ['data']
    make_dirs('data/imagenet21k/train')
    check_data_paths(merged_train_cfg(in21k))

    monkeypatch.setenv('HOME', str(in_tmp / 'home'))
    for prefix, missing in [('~/train', in_tmp / 'home' / 'train'),
                            (str(in_tmp / 'abs'), in_tmp / 'abs')]:
        cfg = merged_train_cfg(
            in21k, '--cfg-options',
            f'train_dataloader.dataset.data_prefix={prefix}')
        with pytest.raises(FileNotFoundError) as info:
            check_data_paths(cfg)
        assert f"data_prefix folder not found: '{missing}'" in str(info.value)
        make_dirs(missing)
        check_data_paths(cfg)


def test_no_validate_drops_the_validation_loop(in_tmp):
    make_dirs('data/imagenet/train')
    splits = ('train', 'val')  # as tools/train.py checks them
    with pytest.raises(FileNotFoundError, match='val_dataloader'):
        check_data_paths(merged_train_cfg(IN1K), splits)
    cfg = merged_train_cfg(IN1K, '--no-validate')
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.val_evaluator is None
    check_data_paths(cfg, splits)


def test_mmdet_image_folder_is_checked(in_tmp):
    touch('data/coco/annotations/instances_train2017.json',
          'data/coco/annotations/instances_val2017.json')
    make_dirs('data/coco/val2017')
    options = ['--cfg-options', 'model.backbone.init_cfg=None']
    message = train_error(FileNotFoundError, MASK_RCNN, *options)
    assert message.startswith('train_dataloader: data_prefix.img folder')
    assert "'data/coco/train2017/'" in message
    assert os.listdir(in_tmp) == ['data']

    make_dirs('data/coco/train2017')
    check_data_paths(merged_train_cfg(MASK_RCNN, *options))


def test_remote_and_mapped_storage_is_left_to_the_backend(in_tmp):
    s3 = merged_train_cfg(
        MASK_RCNN, '--cfg-options', 'model.backbone.init_cfg=None',
        'train_dataloader.dataset.data_root=s3://openmmlab/coco/',
        'val_dataloader.dataset.data_root=s3://openmmlab/coco/')
    check_data_paths(s3, splits=('train', 'val'))
    petrel = Config.fromfile(UPERNET)
    backend = dict(backend='petrel', path_mapping={'data/': 's3://data/'})
    for loader in (petrel.train_dataloader, petrel.val_dataloader):
        loader.dataset.pipeline[0]['backend_args'] = backend
    check_data_paths(petrel, splits=('train', 'val'))
    # Without them, the same configs name the missing local folders.
    with pytest.raises(FileNotFoundError, match='data root not found'):
        check_data_paths(merged_train_cfg(
            MASK_RCNN, '--cfg-options', 'model.backbone.init_cfg=None'),
            splits=('train', 'val'))
    with pytest.raises(FileNotFoundError, match='data root not found'):
        check_data_paths(Config.fromfile(UPERNET), splits=('train', 'val'))


def test_test_checkpoint_must_fit_the_config(in_tmp):
    """mmengine loads a test checkpoint non-strictly: a checkpoint that
    does not fit would be tested with random weights after a warning."""
    cfg = Config.fromfile(DIGITS)
    save_classifier('ckpt/good.pth', head_shape=(10, 256))
    check_test_checkpoint(cfg, 'ckpt/good.pth')
    args = test_tool.parse_args([str(DIGITS), 'ckpt/good.pth', '--tta'])
    tta = merge_test_args(Config.fromfile(args.config), args)
    check_test_checkpoint(tta, 'ckpt/good.pth')

    save_classifier('ckpt/authors.pth', (10, 256), backbone_prefix='')
    save_classifier('ckpt/in1k.pth', (1000, 256))
    tiny = {f'backbone.{k}': v for k, v in L2ViT('tiny').state_dict().items()}
    torch.save(dict(state_dict=tiny), 'ckpt/tiny.pth')
    torch.save({}, 'ckpt/empty.pth')
    errors = {}
    for name in ('authors', 'in1k', 'tiny', 'empty', 'missing'):
        with pytest.raises(ValueError) as info:
            check_test_checkpoint(tta, f'ckpt/{name}.pth')
        errors[name] = str(info.value)
    assert errors['authors'] == (
        'checkpoint: ckpt/authors.pth has no "backbone." keys, so it would '
        'load nothing into the model; convert the authors\' checkpoint with '
        'tools/model_converters/l2vit2mmpretrain.py')
    assert errors['in1k'].startswith(
        'checkpoint: ckpt/in1k.pth has a 1000-class head on 256 channels '
        '(head.fc.weight), but model.module.head has num_classes=10')
    assert errors['tiny'].startswith(
        'checkpoint: ckpt/tiny.pth holds an L2ViT with ')
    assert errors['empty'].startswith('checkpoint: ckpt/empty.pth has no')
    assert errors['missing'] == \
        'checkpoint: checkpoint file not found: ckpt/missing.pth'


def test_test_checkpoint_of_another_task(in_tmp):
    """A classifier's checkpoint has no weights for a segmentor's heads,
    and the other way round: they would be tested from random weights."""
    save_classifier('ckpt/cls.pth', head_shape=(10, 256))
    save_built_model(SEG_DEMO, 'ckpt/seg.pth')
    mask_rcnn = CONFIGS / 'demo' / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py'
    check_test_checkpoint(Config.fromfile(SEG_DEMO), 'ckpt/seg.pth')
    # A head without weights needs none.
    headless = Config.fromfile(DIGITS)
    headless.model.head = dict(type='ClsHead')
    check_test_checkpoint(headless, 'ckpt/seg.pth')
    for config, name, missing, held in [
        (DIGITS, 'seg', 'model.head', 'auxiliary_head, backbone, decode_head'),
        (SEG_DEMO, 'cls', 'model.decode_head, model.auxiliary_head',
         'backbone, head'),
        (mask_rcnn, 'cls', 'model.rpn_head, model.roi_head', 'backbone, head'),
    ]:
        with pytest.raises(ValueError) as info:
            check_test_checkpoint(Config.fromfile(config), f'ckpt/{name}.pth')
        assert str(info.value) == (
            f'checkpoint: ckpt/{name}.pth has no weights for {missing} (it '
            f'holds {held}): a checkpoint of another model, whose missing '
            'parts would stay random')


def test_test_checkpoint_must_hold_every_weight_in_its_shape(in_tmp):
    """A checkpoint with the right backbone arch and heads can still miss
    weights or hold others of another shape (another mlp_ratio, another
    number of classes, a Mask R-CNN's weights for a Cascade): mmengine
    would warn and test those weights at random."""
    good = save_built_model(SEG_DEMO, 'ckpt/seg.pth')
    seg_demo = Config.fromfile(SEG_DEMO)
    check_test_checkpoint(seg_demo, 'ckpt/seg.pth')
    partial = {k: v for k, v in good.items()
               if not k.startswith('backbone.stages.2.0.')}
    torch.save(dict(state_dict=partial), 'ckpt/partial.pth')
    classes = dict(good, **{
        'decode_head.conv_seg.weight': torch.zeros(5, 64, 1, 1),
        'decode_head.conv_seg.bias': torch.zeros(5)})
    torch.save(dict(state_dict=classes), 'ckpt/classes.pth')
    seg_demo.model.backbone.mlp_ratio = 2
    errors = {}
    for name in ('partial', 'classes'):
        with pytest.raises(ValueError) as info:
            check_test_checkpoint(Config.fromfile(SEG_DEMO),
                                  f'ckpt/{name}.pth')
        errors[name] = str(info.value)
    with pytest.raises(ValueError) as info:
        check_test_checkpoint(seg_demo, 'ckpt/seg.pth')
    errors['mlp_ratio'] = str(info.value)
    tail = ': mmengine would load the rest and keep these weights random'
    assert errors['partial'] == (
        'checkpoint: ckpt/partial.pth does not fit model (missing keys: '
        'backbone.stages.2.0.cpe.0.proj.weight, '
        'backbone.stages.2.0.cpe.0.proj.bias, '
        'backbone.stages.2.0.cpe.1.proj.weight and 13 more)' + tail)
    assert errors['classes'] == (
        'checkpoint: ckpt/classes.pth does not fit model (wrong shapes: '
        'decode_head.conv_seg.weight [5, 64, 1, 1] (expected [11, 64, 1, '
        '1]), decode_head.conv_seg.bias [5] (expected [11]))' + tail)
    assert errors['mlp_ratio'].startswith(
        'checkpoint: ckpt/seg.pth does not fit model (wrong shapes: '
        'backbone.stages.0.0.mlp.fc1.weight [128, 32] (expected [64, 32])')


def test_bad_backbone_argument_leaves_no_work_dir(in_tmp, digits_root):
    """Every backbone argument is checked before the runner starts, not
    only the arch: the backbone is built on the meta device."""
    for option, message in [
        ('window_size=0', 'window_size must be an int >= 1, got 0'),
        ('out_indices=[5]', 'out_indices [5] has 5, out of range'),
        ('mlp_ratio=0.01', 'mlp_ratio 0.01 leaves no hidden channels'),
    ]:
        error = train_error(
            ValueError, DIGITS, '--work-dir', 'wd', '--cfg-options',
            f'train_dataloader.dataset.data_root={digits_root}',
            f'val_dataloader.dataset.data_root={digits_root}',
            f'model.backbone.{option}')
        assert error.startswith('model.backbone: ') and message in error
        assert not os.path.exists('wd')


def test_unregistered_type_is_one_line_before_the_test(in_tmp, digits_root):
    save_classifier('ckpt/good.pth', head_shape=(10, 256))
    message = tool_error(
        test_tool, ValueError, DIGITS, 'ckpt/good.pth', '--cfg-options',
        f'test_dataloader.dataset.data_root={digits_root}',
        'model.head.type=NoSuchHead')
    assert message.startswith(
        'model: NoSuchHead is not in the mmpretrain::model registry.')
    assert os.listdir(in_tmp) == ['ckpt']


def test_test_checkpoint_url_is_left_to_mmengine(in_tmp, monkeypatch):
    import l2vit_mm.converters as converters

    def no_read(path):
        raise AssertionError(f'read {path}')

    monkeypatch.setattr(converters, 'load_checkpoint_file', no_read)
    check_test_checkpoint(
        Config.fromfile(DIGITS), 'https://example.com/l2vit-demo.pth')


def test_test_tool_refuses_an_unconverted_checkpoint(in_tmp, digits_root):
    save_classifier('ckpt/authors.pth', (10, 256), backbone_prefix='')
    options = [f'test_dataloader.dataset.data_root={digits_root}']
    message = tool_error(test_tool, ValueError, DIGITS, 'ckpt/authors.pth',
                         '--cfg-options', *options)
    assert 'has no "backbone." keys' in message
    assert os.listdir(in_tmp) == ['ckpt']  # no work dir


def test_mmseg_label_folder_is_checked_by_test_tool(in_tmp):
    root = 'data/ade/ADEChallengeData2016'
    make_dirs(f'{root}/images/validation')
    torch.save({}, 'model.pth')
    message = tool_error(test_tool, FileNotFoundError, UPERNET, 'model.pth')
    assert message.startswith(
        'test_dataloader: data_prefix.seg_map_path folder not found')
    assert f"'{root}/annotations/validation'" in message
    assert sorted(os.listdir(in_tmp)) == ['data', 'model.pth']


def test_mmseg_ann_file_may_be_a_folder(in_tmp):
    root = 'data/ade/ADEChallengeData2016'
    make_dirs(f'{root}/images/validation', f'{root}/annotations/validation')
    args = test_tool.parse_args([
        str(UPERNET), 'model.pth', '--cfg-options',
        'test_dataloader.dataset.ann_file=splits'
    ])
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    with pytest.raises(FileNotFoundError) as info:
        check_data_paths(cfg, splits=('test', ))
    assert str(info.value).startswith(
        f"test_dataloader: annotation file not found: '{root}/splits'")

    make_dirs(f'{root}/splits')  # mmseg then lists the image folder
    check_data_paths(cfg, splits=('test', ))
    cfg.default_scope = 'mmdet'  # mmdet and mmpretrain need a file
    with pytest.raises(FileNotFoundError, match='annotation file not found'):
        check_data_paths(cfg, splits=('test', ))


def test_backbone_checkpoint_of_another_arch(in_tmp):
    make_dirs('data/imagenet/train', 'data/imagenet/val')
    save_classifier('checkpoints/small.pth')
    options = [
        '--cfg-options', 'model.backbone.init_cfg.type=Pretrained',
        'model.backbone.init_cfg.checkpoint=checkpoints/small.pth',
        'model.backbone.init_cfg.prefix=backbone.'
    ]
    message = train_error(ValueError, IN1K, *options)
    assert message.startswith(
        'model.backbone.init_cfg: checkpoints/small.pth holds an L2ViT')
    assert sorted(os.listdir(in_tmp)) == ['checkpoints', 'data']


def test_backbone_checkpoint_must_hold_every_weight_in_its_shape(in_tmp):
    """A pre-trained classifier fits a dense-task backbone, whose extra
    norms start fresh; missing blocks or another mlp_ratio do not."""
    cfg = Config.fromfile(SEG_DEMO)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint='ckpt/cls.pth', prefix='backbone.')
    save_classifier('ckpt/cls.pth')
    check_backbone(cfg)
    classifier = torch.load('ckpt/cls.pth')['state_dict']
    torch.save(dict(state_dict={
        k: v for k, v in classifier.items()
        if not k.startswith('backbone.stages.2.0.')}), 'ckpt/cls.pth')
    with pytest.raises(ValueError) as info:
        check_backbone(cfg)
    assert str(info.value).startswith(
        'model.backbone.init_cfg: ckpt/cls.pth does not fit model.backbone '
        '(missing keys: stages.2.0.cpe.0.proj.weight, ')
    wide = L2ViT(SMALL_ARCH, window_size=4, mlp_ratio=2).state_dict()
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in wide.items()}),
               'ckpt/cls.pth')
    with pytest.raises(ValueError) as info:
        check_backbone(cfg)
    assert str(info.value).startswith(
        'model.backbone.init_cfg: ckpt/cls.pth does not fit model.backbone '
        '(wrong shapes: stages.0.0.mlp.fc1.weight [64, 32] (expected '
        '[128, 32]), ')


def test_missing_model_level_checkpoint(in_tmp):
    make_dirs('data/imagenet/train', 'data/imagenet/val')
    message = train_error(FileNotFoundError, IN21K_PRE)
    assert message.startswith(
        'model.init_cfg: pre-trained checkpoint not found')
    assert f"'{CUT_1K}'" in message
    assert 'l2vit_cut_head_22kto1k.py' in message
    assert os.listdir(in_tmp) == ['data']


def test_model_level_checkpoint_of_another_arch(in_tmp):
    make_dirs('data/imagenet/train', 'data/imagenet/val')
    save_classifier(CUT_1K)
    message = train_error(ValueError, IN21K_PRE)
    assert message.startswith(f'model.init_cfg: {CUT_1K} holds an L2ViT')
    assert "'embed_dims': [32, 64, 128, 256]" in message
    assert "builds {'embed_dims': [128, 256, 512, 1024]" in message
    assert sorted(os.listdir(in_tmp)) == ['checkpoints', 'data']


def test_model_level_checkpoint_head_size(in_tmp):
    make_dirs('data/imagenet/train', 'data/imagenet/val')
    config = small_in21k_pre_config(in_tmp)
    save_classifier(CUT_1K, head_shape=(21841, 256))
    message = train_error(ValueError, config)
    assert message.startswith(f'model.init_cfg: {CUT_1K} has a 21841-class '
                              'head on 256 channels (head.fc.weight)')
    assert 'num_classes=1000, in_channels=256' in message
    assert 'l2vit_cut_head_22kto1k.py' in message
    assert sorted(os.listdir(in_tmp)) == [
        'checkpoints', 'data', 'small_in21k-pre.py'
    ]

    save_classifier(CUT_1K)
    check_backbone(merged_train_cfg(config))  # the cut head fits


def test_data_folders_are_checked_before_the_checkpoint_is_read(
        in_tmp, monkeypatch):
    import l2vit_mm.converters

    def no_read(path):
        raise AssertionError(f'read {path} before checking the data folders')

    save_classifier(CUT_1K)
    monkeypatch.setattr(l2vit_mm.converters, 'load_checkpoint_file', no_read)
    message = train_error(FileNotFoundError, IN21K_PRE)
    assert message.startswith(
        "train_dataloader: data root not found: 'data/imagenet'")


def test_model_level_checkpoint_in_the_authors_layout(in_tmp):
    make_dirs('data/imagenet/train', 'data/imagenet/val')
    save_classifier(CUT_1K, backbone_prefix='')
    message = train_error(ValueError, small_in21k_pre_config(in_tmp))
    assert message.startswith(
        f'model.init_cfg: {CUT_1K} has no "backbone." keys')
    assert 'l2vit2mmpretrain.py' in message


def test_missing_resume_checkpoint(in_tmp):
    make_dirs('data/demo/digits/train', 'data/demo/digits/val')
    missing = in_tmp / 'nope' / 'epoch_3.pth'
    message = train_error(FileNotFoundError, DIGITS, '--resume', missing)
    assert message == f"--resume checkpoint not found: '{missing}'"
    message = train_error(FileNotFoundError, DIGITS, '--cfg-options',
                          f'load_from={missing}')
    assert message == f"load_from checkpoint not found: '{missing}'"
    assert os.listdir(in_tmp) == ['data']


def test_resume_flag(in_tmp):
    torch.save({}, 'epoch_3.pth')
    cfg = merged_train_cfg(DIGITS, '--resume', 'epoch_3.pth')
    assert cfg.resume is True and cfg.load_from == 'epoch_3.pth'
    cfg = merged_train_cfg(DIGITS, '--resume')
    assert cfg.resume is True and cfg.load_from is None


def test_amp_without_gpu_is_refused_before_work_dir(in_tmp, monkeypatch):
    """mmengine's AmpOptimWrapper asserts an accelerator once the runner is
    built; the train tool refuses ``--amp`` first, in one line."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    for name in ('cuda', 'npu', 'mlu', 'musa'):
        monkeypatch.setattr(amp, f'is_{name}_available', lambda: False)
    message = train_error(ValueError, DIGITS, '--amp')
    assert message.startswith('--amp needs a GPU')
    assert os.listdir(in_tmp) == []
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    cfg = merged_train_cfg(DIGITS, '--amp')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'


def test_auto_scale_lr_flag(in_tmp):
    assert merged_train_cfg(DIGITS).auto_scale_lr == dict(base_batch_size=32)
    cfg = merged_train_cfg(DIGITS, '--auto-scale-lr')
    assert cfg.auto_scale_lr == dict(
        base_batch_size=32, enable=True, total_batch_size=32)

    args = train_tool.parse_args([str(DIGITS), '--auto-scale-lr'])
    cfg = Config.fromfile(args.config)
    cfg.auto_scale_lr = dict(enable=False)
    with pytest.raises(ValueError, match='needs auto_scale_lr=dict'):
        merge_train_args(cfg, args)
    # --cfg-options may give the base batch size.
    args = train_tool.parse_args([
        str(DIGITS), '--auto-scale-lr', '--cfg-options',
        'auto_scale_lr.base_batch_size=64'
    ])
    cfg = Config.fromfile(args.config)
    cfg.auto_scale_lr = dict(enable=False)
    merge_train_args(cfg, args)
    assert cfg.auto_scale_lr == dict(
        base_batch_size=64, enable=True, total_batch_size=64)


def scaled_lr(cfg, world_size):
    """The lr after mmengine's ``Runner.scale_lr`` on ``world_size``
    processes with the config's batch per process."""
    from unittest import mock

    from mmengine.optim import OptimWrapper
    from mmengine.runner import Runner
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))],
                                lr=cfg.optim_wrapper.optimizer.lr)
    wrapper = OptimWrapper(optimizer)
    runner = mock.Mock(
        world_size=world_size,
        _train_dataloader=cfg.train_dataloader,
        param_schedulers=cfg.param_scheduler)
    Runner.scale_lr(runner, wrapper, cfg.auto_scale_lr)
    return optimizer.param_groups[0]['lr']


@pytest.mark.parametrize('config,world_size,accumulation,ratio', [
    (IN1K, 8, None, 1), (IN1K, 16, None, 2), (IN1K, 4, None, 0.5),
    (IN1K, 16, 2, 1), (IN21K_PRE, 8, None, 1), (IN21K_PRE, 16, 1, 1),
    (DIGITS, 1, None, 1), (DIGITS, 2, None, 2), (UPERNET, 8, None, 1),
    (UPERNET, 16, None, 2)
])
def test_auto_scale_lr_counts_gradient_accumulation(in_tmp, config,
                                                    world_size, accumulation,
                                                    ratio):
    """The lr scales with the total batch, accumulation included: the
    recipes' total batch (8 GPUs x batch x accumulation) keeps their lr."""
    options = [] if accumulation is None else [
        '--cfg-options', f'optim_wrapper.accumulative_counts={accumulation}']
    base_lr = Config.fromfile(config).optim_wrapper.optimizer.lr
    cfg = merged_train_cfg(config, '--auto-scale-lr', *options)
    assert scaled_lr(cfg, world_size) == pytest.approx(base_lr * ratio)


def test_auto_scale_lr_the_same_however_enabled(in_tmp):
    """--cfg-options auto_scale_lr.enable=True counts accumulation as the
    flag does, and so does a second run of the config a run dumped."""
    base_lr = Config.fromfile(IN1K).optim_wrapper.optimizer.lr
    flag = merged_train_cfg(IN1K, '--auto-scale-lr')
    option = merged_train_cfg(IN1K, '--cfg-options',
                              'auto_scale_lr.enable=True')
    flag.dump('dumped.py')
    again = merged_train_cfg('dumped.py', '--auto-scale-lr')
    for cfg in (flag, option, again):
        assert cfg.auto_scale_lr.total_batch_size == 4096
        assert scaled_lr(cfg, 8) == pytest.approx(base_lr)
        assert scaled_lr(cfg, 16) == pytest.approx(2 * base_lr)


def test_mmdet_out_must_be_a_pickle(in_tmp):
    det_demo = CONFIGS / 'demo' / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py'
    torch.save({}, 'model.pth')
    for out, ok in [('res.pkl', True), ('res.pickle', True),
                    ('res.json', False)]:
        args = test_tool.parse_args([str(det_demo), 'model.pth', '--out',
                                     out])
        if ok:
            cfg = merge_test_args(Config.fromfile(args.config), args)
            assert cfg.test_evaluator[-1] == dict(
                type='DumpDetResults', out_file_path=out)
            continue
        with pytest.raises(ValueError) as info:
            merge_test_args(Config.fromfile(args.config), args)
        assert str(info.value) == (
            '--out res.json: mmdet dumps results to a .pkl or .pickle file')


@pytest.mark.parametrize('config, out, reason', [
    (DIGITS, 'a_folder.pkl', 'Is a directory'),
    (DIGITS, 'a_file/preds.pkl', 'Not a directory: {tmp}/a_file'),
    (CONFIGS / 'demo' / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py',
     'a_file/sub/preds.pkl', 'Not a directory: {tmp}/a_file'),
    (SEG_DEMO, 'a_file', 'Not a directory'),
    (SEG_DEMO, 'a_file/pred', 'Not a directory: {tmp}/a_file'),
])
def test_out_that_cannot_be_written_is_refused_before_the_test(
        in_tmp, config, out, reason):
    """--out is written once the test has run (hours on COCO): a path in
    the way fails before, naming it."""
    torch.save({}, 'model.pth')
    make_dirs('a_folder.pkl')
    open('a_file', 'w').close()
    message = tool_error(test_tool, ValueError, config, 'model.pth', '--out',
                         out)
    assert message == (
        f'cannot write --out {out}: {reason.format(tmp=in_tmp)}')
    assert sorted(os.listdir(in_tmp)) == [
        'a_file', 'a_folder.pkl', 'model.pth'
    ]


@pytest.mark.parametrize('config, show_dir, reason', [
    (DIGITS, 'a_file', 'Not a directory'),
    (SEG_DEMO, 'a_file/sub', 'Not a directory: {tmp}/a_file'),
    (CONFIGS / 'demo' / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py',
     '{tmp}/a_file', 'Not a directory'),
])
def test_show_dir_that_cannot_be_written_is_refused_before_the_test(
        in_tmp, config, show_dir, reason):
    torch.save({}, 'model.pth')
    open('a_file', 'w').close()
    show_dir = show_dir.format(tmp=in_tmp)
    message = tool_error(test_tool, ValueError, config, 'model.pth',
                         '--show-dir', show_dir)
    assert message == (f'cannot write --show-dir {show_dir}: '
                       f'{reason.format(tmp=in_tmp)}')
    assert sorted(os.listdir(in_tmp)) == ['a_file', 'model.pth']


def test_mmdet_show_dir_is_in_the_work_dir(in_tmp):
    """mmdet draws into work_dir/<run>/show_dir: a file named like the
    show dir beside the work dir is not in the way."""
    torch.save({}, 'model.pth')
    open('vis', 'w').close()
    det_demo = CONFIGS / 'demo' / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py'
    args = test_tool.parse_args([str(det_demo), 'model.pth', '--show-dir',
                                 'vis', '--work-dir', 'work'])
    cfg = merge_test_args(Config.fromfile(args.config), args)
    assert cfg.default_hooks.visualization.test_out_dir == 'vis'


def test_mmpretrain_out_must_be_a_pickle(in_tmp):
    torch.save({}, 'model.pth')
    message = tool_error(test_tool, ValueError, DIGITS, 'model.pth', '--out',
                         'preds.json')
    assert message == ('--out preds.json: mmpretrain dumps results to a '
                       '.pkl or .pickle file')
    assert os.listdir(in_tmp) == ['model.pth']


def test_out_in_a_new_folder_is_accepted(in_tmp):
    torch.save({}, 'model.pth')
    for config, out in [(DIGITS, 'new/preds.pkl'), (SEG_DEMO, 'new/pred')]:
        args = test_tool.parse_args([str(config), 'model.pth', '--out', out])
        merge_test_args(Config.fromfile(args.config), args)
    assert os.listdir(in_tmp) == ['model.pth']


def test_mmseg_out_saves_predictions(in_tmp):
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import METRICS
    from mmseg.structures import SegDataSample
    torch.save({}, 'model.pth')
    args = test_tool.parse_args([str(SEG_DEMO), 'model.pth', '--out', 'pred'])
    cfg = merge_test_args(Config.fromfile(args.config), args)
    assert cfg.test_evaluator.output_dir == 'pred'
    assert cfg.test_evaluator.keep_results is True

    init_default_scope('mmseg')
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dict(classes=cfg.metainfo['classes'])
    sample = SegDataSample(
        pred_sem_seg=PixelData(data=torch.full((1, 4, 4), 2)),
        gt_sem_seg=PixelData(data=torch.full((1, 4, 4), 2)))
    sample.set_metainfo(dict(img_path='images/x/scene_7.jpg'))
    metric.process({}, [sample.to_dict()])
    assert os.listdir(in_tmp / 'pred') == ['scene_7.png']


def test_mmseg_out_with_a_list_of_evaluators(in_tmp):
    torch.save({}, 'model.pth')
    args = test_tool.parse_args([str(SEG_DEMO), 'model.pth', '--out', 'pred'])

    def merged(*evaluators):
        cfg = Config.fromfile(args.config)
        cfg.test_evaluator = list(evaluators)
        return merge_test_args(cfg, args)

    cfg = merged(
        dict(type='IoUMetric'),
        dict(type='mmseg.IoUMetric', iou_metrics=['mDice']))
    assert [(e.output_dir, e.keep_results)
            for e in cfg.test_evaluator] == [('pred', True)] * 2

    with pytest.raises(ValueError) as info:
        merged(dict(type='DepthMetric'))
    assert str(info.value) == (
        "--out needs one of ['IoUMetric', 'CityscapesMetric'] in "
        "test_evaluator (mmseg metrics write the predictions), got "
        "['DepthMetric']")


def test_missing_config_exits_with_one_line(in_tmp):
    for tool in (train_tool, test_tool):
        argv = ['nope.py'] + (['model.pth'] if tool is test_tool else [])
        message = tool_error(tool, FileNotFoundError, *argv)
        assert 'nope.py' in message


def test_cfg_option_without_a_value_is_a_usage_error(in_tmp, capsys):
    for tool in (train_tool, test_tool):
        argv = [str(DIGITS)] + (['model.pth'] if tool is test_tool else [])
        with pytest.raises(SystemExit) as info:
            tool.parse_args(argv + ['--cfg-options', 'a=1', 'max_epochs'])
        assert info.value.code == 2
        assert ("argument --cfg-options: expected KEY=VALUE, got "
                "'max_epochs'") in capsys.readouterr().err
    args = train_tool.parse_args([str(DIGITS), '--cfg-options', 'a=1',
                                  'b.c=[1,2]'])
    assert args.cfg_options == {'a': 1, 'b.c': [1, 2]}
