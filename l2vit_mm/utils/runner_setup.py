# Copyright (c) l2vit_mm contributors. All rights reserved.
"""One train/test set-up for mmpretrain, mmdet and mmseg configs.

``tools/train.py`` and ``tools/test.py`` dispatch on the config's
``default_scope`` and apply the same command-line flags that each library's
own tools accept, with that library's conventions where they differ
(visualisation hooks, result dumping, dataloader defaults).
"""
import os
import os.path as osp
import sys
import warnings
from copy import deepcopy

import torch
import torch.distributed as dist
from mmengine.config import ConfigDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

#: The ``default_scope`` values a config may have.
TASK_SCOPES = ('mmpretrain', 'mmdet', 'mmseg')


def get_task_scope(cfg):
    """Return the task library of a config from its ``default_scope``.

    Args:
        cfg (Config): A loaded config.

    Returns:
        str: One of :data:`TASK_SCOPES`.
    """
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(
            f'config default_scope must be one of {list(TASK_SCOPES)}, got '
            f'{scope!r}; inherit a base config of mmpretrain, mmdet or mmseg')
    return scope


def _dataloaders(cfg):
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader is not None:
            yield split, loader


def _datasets(dataset):
    """Yield the leaf dataset configs of a (possibly wrapped) dataset."""
    if 'datasets' in dataset:
        for child in dataset['datasets']:
            yield from _datasets(child)
    elif 'dataset' in dataset:
        yield from _datasets(dataset['dataset'])
    else:
        yield dataset


def check_data_paths(cfg, splits=('train', 'val', 'test')):
    """Fail early, naming the path, when a data root or annotation is missing.

    Args:
        cfg (Config): A loaded config.
        splits (Sequence[str]): The dataloaders to check.
    """
    for split, loader in _dataloaders(cfg):
        if split not in splits:
            continue
        for dataset in _datasets(loader['dataset']):
            root = dataset.get('data_root', '') or ''
            if root and not osp.isdir(root):
                raise FileNotFoundError(
                    f'{split}_dataloader: data root not found: {root!r} '
                    f'(dataset {dataset.get("type")}); see README "Data"')
            ann_file = dataset.get('ann_file', '') or ''
            if ann_file:
                path = ann_file if osp.isabs(ann_file) else osp.join(
                    root, ann_file)
                if not osp.isfile(path):
                    raise FileNotFoundError(
                        f'{split}_dataloader: annotation file not found: '
                        f'{path!r} (dataset {dataset.get("type")})')


def _find_backbone(model):
    """Return the backbone config of a model config (or of a TTA wrapper)."""
    while isinstance(model, dict):
        if isinstance(model.get('backbone'), dict):
            return model['backbone']
        model = model.get('module')
    return None


def check_backbone(cfg, check_pretrained=True):
    """Fail early, with a clear message, on a bad L2ViT backbone config.

    Runs before the runner creates the work dir, so a config with an
    unknown arch, a missing pre-trained checkpoint or a checkpoint of
    another backbone (or another L2ViT size) leaves no work dir behind.
    Backbones of other types are not checked.

    Args:
        cfg (Config): A loaded config.
        check_pretrained (bool): Also check the file of a
            ``init_cfg=dict(type='Pretrained', ...)`` of the backbone
            (training only: testing loads a full checkpoint instead).
            Defaults to True.
    """
    from ..converters import (CheckpointError, detect_arch,
                              extract_state_dict, load_checkpoint_file)
    from ..models import L2ViT
    backbone = _find_backbone(cfg.get('model'))
    if backbone is None or backbone.get('type') != 'L2ViT':
        return
    try:
        arch = L2ViT.parse_arch(backbone.get('arch', 'tiny'))
    except (ValueError, TypeError) as e:
        raise ValueError(f'model.backbone: {e}') from None
    init_cfg = backbone.get('init_cfg')
    if not check_pretrained or not isinstance(init_cfg, dict) or \
            init_cfg.get('type') != 'Pretrained':
        return
    path = init_cfg.get('checkpoint')
    if not isinstance(path, str) or '://' in path:
        return  # URLs are fetched by mmengine.
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'model.backbone.init_cfg: pre-trained checkpoint not found: '
            f'{path!r}; convert the authors\' ImageNet weights with '
            'tools/model_converters/l2vit2mmpretrain.py (see '
            'docs/detection_segmentation.md) or set '
            'model.backbone.init_cfg=None to train from scratch')
    prefix = init_cfg.get('prefix') or ''
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    try:
        state_dict = extract_state_dict(load_checkpoint_file(path))
        if prefix:
            state_dict = {
                k[len(prefix):]: v
                for k, v in state_dict.items() if k.startswith(prefix)
            }
            if not state_dict:
                raise CheckpointError(f'no keys start with {prefix!r}')
        found = detect_arch(state_dict)
    except CheckpointError as e:
        raise ValueError(
            f'model.backbone.init_cfg: {path} is not an L2ViT checkpoint '
            f'that this backbone can load: {e}') from None
    found = {k: found[k] for k in arch}
    if found != arch:
        raise ValueError(
            f'model.backbone.init_cfg: {path} holds an L2ViT with {found}, '
            f'but the config builds {arch}')


def _merge_common_args(cfg, args):
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)


def _set_mmpretrain_dataloader_defaults(cfg):
    """mmpretrain's tools give its dataloaders these defaults."""
    for split, loader in _dataloaders(cfg):
        merged = ConfigDict(
            pin_memory=True,
            persistent_workers=loader.get('num_workers', 0) > 0,
            collate_fn=dict(type='default_collate'))
        merged.update(loader)
        cfg[f'{split}_dataloader'] = merged


def merge_train_args(cfg, args):
    """Apply ``tools/train.py`` flags to a config.

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed ``tools/train.py`` arguments.

    Returns:
        Config: ``cfg``.
    """
    scope = get_task_scope(cfg)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise ValueError('--auto-scale-lr needs auto_scale_lr='
                             'dict(base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True
    _merge_common_args(cfg, args)
    if args.no_validate:
        # After --cfg-options, which may name val_* keys of the config.
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if scope == 'mmpretrain':
        _set_mmpretrain_dataloader_defaults(cfg)
    check_backbone(cfg)
    return cfg


def _enable_visualization(cfg, show_dir):
    scope = get_task_scope(cfg)
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs default_hooks.visualization in '
                         'the config')
    if scope == 'mmpretrain':
        hook.update(enable=True, out_dir=show_dir, interval=1)
    elif scope == 'mmdet':
        hook.update(draw=True, test_out_dir=show_dir)
    else:
        # mmseg's hook draws every 50th batch by default; --show-dir means
        # every prediction, as in mmdet and mmpretrain.
        hook.update(draw=True, interval=1)
        cfg.visualizer['save_dir'] = show_dir


def _dump_results(cfg, out):
    scope = get_task_scope(cfg)
    if scope == 'mmseg':
        cfg.test_evaluator.update(output_dir=out, keep_results=True)
        return
    dump = dict(type='DumpDetResults' if scope == 'mmdet' else
                'DumpResults', out_file_path=out)
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, (list, tuple)):
        cfg.test_evaluator = [*evaluators, dump]
    else:
        cfg.test_evaluator = [evaluators, dump]


def merge_test_args(cfg, args):
    """Apply ``tools/test.py`` flags to a config.

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed ``tools/test.py`` arguments.

    Returns:
        Config: ``cfg``.
    """
    scope = get_task_scope(cfg)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    # --cfg-options first: they may name keys of the config's evaluator,
    # which --out turns into a list.
    _merge_common_args(cfg, args)
    if args.show_dir:
        _enable_visualization(cfg, args.show_dir)
    if args.out:
        _dump_results(cfg, args.out)
    if scope == 'mmpretrain':
        _set_mmpretrain_dataloader_defaults(cfg)
    check_backbone(cfg, check_pretrained=False)
    return cfg


def _replace_sync_bn(node):
    """Turn every ``SyncBN`` norm config into ``BN``; return how many."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_sync_bn(value)
    return count


def setup_cpu_distributed(cfg):
    """Let ``--launcher pytorch`` train on machines without CUDA.

    mmengine assumes one GPU per process (``torch.cuda.set_device``, NCCL,
    DDP ``device_ids``). Without CUDA this joins the process group with the
    gloo backend (each rank says so on stderr), wraps the model in DDP
    without device ids and turns SyncBN (CUDA only) into per-process BN,
    saying so.

    Args:
        cfg (Config): A merged config; modified in place.
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    # mmengine logs on rank 0 only; this line shows that every rank joined.
    print(f'[rank {dist.get_rank()}/{dist.get_world_size()}] no CUDA: '
          'running on the CPU with the gloo backend', file=sys.stderr,
          flush=True)
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.device_ids = None
    cfg.model_wrapper_cfg = wrapper
    replaced = _replace_sync_bn(cfg.model)
    if replaced and int(os.environ.get('RANK', 0)) == 0:
        warnings.warn(f'No CUDA: {replaced} SyncBN layer config(s) use '
                      'per-process BN in this CPU (gloo) run')


def build_runner(cfg):
    """Build the runner of a config as the libraries' tools do.

    Args:
        cfg (Config): A merged config.

    Returns:
        Runner: The runner.
    """
    setup_cpu_distributed(cfg)
    if get_task_scope(cfg) == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    if 'runner_type' in cfg:
        return RUNNERS.build(deepcopy(cfg))
    return Runner.from_cfg(cfg)
