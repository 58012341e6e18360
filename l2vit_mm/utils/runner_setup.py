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

from .atomic_write import unwritable_reason
from .config_type import config_type
from .test_time_aug import enable_tta

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


#: mmpretrain datasets that read the ``split`` folder when ``data_prefix``
#: is empty.
SPLIT_FOLDER_DATASETS = ('ImageNet', 'ImageNet21k')


def _join_root(root, path):
    """Join a relative path with ``data_root`` as mmengine datasets do."""
    return path if osp.isabs(path) or not root else osp.join(root, path)


def _data_prefixes(dataset):
    """Return the folders a dataset config reads, as the dataset finds them.

    A ``str`` ``data_prefix`` is mmpretrain's image folder (with ``~``
    expanded); a ``dict`` one names folders such as mmdet's ``img`` or
    mmseg's ``img_path`` and ``seg_map_path``. mmpretrain's ImageNet
    datasets read the ``split`` folder when ``data_prefix`` is empty.
    Relative folders are joined with ``data_root``; empty ones are skipped.

    Args:
        dataset (dict): A leaf dataset config.

    Returns:
        list[tuple[str, str]]: ``(name, path)`` of each folder, the name as
        the config gives it, e.g. ``'data_prefix.img'``.
    """
    prefix = dataset.get('data_prefix', '')
    split = dataset.get('split')
    if prefix == '' and split and \
            config_type(dataset) in SPLIT_FOLDER_DATASETS:
        prefixes = {f'data_prefix (split={split!r})': split}
    elif isinstance(prefix, str):
        prefixes = {'data_prefix': osp.expanduser(prefix)}
    elif isinstance(prefix, dict):
        prefixes = {f'data_prefix.{k}': v for k, v in prefix.items()}
    else:
        return []
    root = dataset.get('data_root') or ''
    return [(name, _join_root(root, path)) for name, path in prefixes.items()
            if isinstance(path, str) and path]


def _reads_through_a_backend(dataset):
    """Whether a dataset reads remote or mapped storage: a URL-like
    ``data_root`` (``s3://``, ...) or ``backend_args`` (e.g. petrel's path
    mapping) on the dataset or a transform of its pipeline."""
    transforms = dataset.get('pipeline') or []
    return '://' in (dataset.get('data_root') or '') or any(
        isinstance(part, dict) and part.get('backend_args') is not None
        for part in [dataset, *transforms])


def check_data_paths(cfg, splits=('train', 'val', 'test')):
    """Fail early, naming the path, when a data folder or file is missing.

    Checks each dataset's ``data_root``, the folders of its ``data_prefix``
    (see :func:`_data_prefixes`) and its ``ann_file`` (which mmseg also
    takes as a folder: it then lists the image folder instead). Datasets
    read through a file backend (see :func:`_reads_through_a_backend`) are
    left to it.

    Args:
        cfg (Config): A loaded config.
        splits (Sequence[str]): The dataloaders to check.
    """
    ann_folders = get_task_scope(cfg) == 'mmseg'
    for split, loader in _dataloaders(cfg):
        if split not in splits:
            continue
        for dataset in _datasets(loader['dataset']):
            if _reads_through_a_backend(dataset):
                continue
            where = f'{split}_dataloader'
            about = f'(dataset {config_type(dataset)}); see README "Data"'
            root = dataset.get('data_root', '') or ''
            if root and not osp.isdir(root):
                raise FileNotFoundError(
                    f'{where}: data root not found: {root!r} {about}')
            for name, path in _data_prefixes(dataset):
                if not osp.isdir(path):
                    raise FileNotFoundError(
                        f'{where}: {name} folder not found: {path!r} {about}')
            ann_file = dataset.get('ann_file', '') or ''
            if ann_file:
                path = _join_root(root, ann_file)
                if not (osp.isfile(path) or ann_folders and osp.isdir(path)):
                    raise FileNotFoundError(
                        f'{where}: annotation file not found: {path!r} '
                        f'{about}')


def find_backbone_model(model):
    """Find the model config that holds the backbone.

    Args:
        model (dict): ``cfg.model``, possibly a TTA wrapper with ``module``.

    Returns:
        tuple[dict | None, str | None]: The model config with a ``backbone``
        dict and its key in the config (``'model'`` or ``'model.module'``),
        or ``(None, None)``.
    """
    where = 'model'
    while isinstance(model, dict):
        if isinstance(model.get('backbone'), dict):
            return model, where
        model = model.get('module')
        where += '.module'
    return None, None


def local_checkpoint(path):
    """The local file a checkpoint path names, as mmengine reads it.

    Args:
        path (str): A local path or a URL.

    Returns:
        str | None: ``path`` with ``~`` expanded; None for a URL, which
        mmengine fetches and the checks leave to it.
    """
    return None if '://' in path else osp.expanduser(path)


def _pretrained_weights(init_cfg, where, hint):
    """Load the weights that a ``Pretrained`` init_cfg gives its module.

    Args:
        init_cfg (dict | None): The init_cfg of the backbone or the model.
        where (str): Its key in the config, for messages.
        hint (str): What to do when the file is missing.

    Returns:
        tuple[str, dict] | None: The checkpoint path and its state dict,
        with ``init_cfg.prefix`` taken off as mmengine does; None when the
        init_cfg is not ``Pretrained`` or names a URL (fetched by mmengine).
    """
    from ..converters import (CheckpointError, extract_state_dict,
                              load_checkpoint_file)
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        return None
    path = init_cfg.get('checkpoint')
    path = local_checkpoint(path) if isinstance(path, str) else None
    if path is None:
        return None
    if not osp.isfile(path):
        raise FileNotFoundError(f'{where}.init_cfg: pre-trained checkpoint '
                                f'not found: {path!r}; {hint}')
    prefix = init_cfg.get('prefix') or ''
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    try:
        state_dict = extract_state_dict(load_checkpoint_file(path))
    except CheckpointError as e:
        raise ValueError(f'{where}.init_cfg: {e}') from None
    state_dict = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not state_dict:
        raise ValueError(f'{where}.init_cfg: no keys of {path} start with '
                         f'{prefix!r}')
    return path, state_dict


def _check_l2vit_arch(state_dict, arch, path, label):
    """Fail unless a state dict holds an L2ViT of the config's arch.

    Args:
        state_dict (dict): Backbone keys, with or without ``backbone.``.
        arch (dict): The config's arch from :meth:`L2ViT.parse_arch`.
        path (str): The checkpoint file, for messages.
        label (str): What gives the checkpoint, for messages (e.g.
            ``'model.backbone.init_cfg'``).
    """
    from ..converters import CheckpointError, detect_arch
    try:
        found = detect_arch(state_dict)
    except CheckpointError as e:
        raise ValueError(
            f'{label}: {path} is not an L2ViT checkpoint that this '
            f'backbone can load: {e}') from None
    found = {k: found[k] for k in arch}
    if found != arch:
        raise ValueError(f'{label}: {path} holds an L2ViT with '
                         f'{found}, but the config builds {arch}')


def _check_classifier_size(state_dict, head, path, label, where):
    """Fail when a checkpoint's classifier does not fit the config's head.

    mmengine skips a weight of another shape with a warning only, which
    would leave the head at its random initialisation.

    Args:
        state_dict (dict): The weights of the whole model.
        head (dict | None): The config's ``head``.
        path (str): The checkpoint file, for messages.
        label (str): What gives the checkpoint, for messages.
        where (str): The model's key in the config, for messages.
    """
    weight = state_dict.get('head.fc.weight')
    if weight is None or weight.dim() != 2 or not isinstance(head, dict):
        return
    expected = (head.get('num_classes'), head.get('in_channels'))
    if not all(isinstance(n, int) for n in expected) or \
            tuple(weight.shape) == expected:
        return
    raise ValueError(
        f'{label}: {path} has a {weight.shape[0]}-class head on '
        f'{weight.shape[1]} channels (head.fc.weight), but {where}.head has '
        f'num_classes={expected[0]}, in_channels={expected[1]}: mmengine '
        'would skip it with a warning and keep a random head; cut a 22K '
        'head with tools/model_converters/l2vit_cut_head_22kto1k.py or set '
        f'{where}.head to the checkpoint\'s size')


def _l2vit_model(cfg):
    """The model config that holds an L2ViT backbone, its key in the
    config and the backbone's arch; ``(None, None, None)`` for other
    backbones."""
    from ..models import L2ViT
    model, where = find_backbone_model(cfg.get('model'))
    if model is None or model['backbone'].get('type') != 'L2ViT':
        return None, None, None
    try:
        arch = L2ViT.parse_arch(model['backbone'].get('arch', 'tiny'))
    except (ValueError, TypeError) as e:
        raise ValueError(f'{where}.backbone: {e}') from None
    return model, where, arch


def _holds_weights(part, scope):
    """Whether a model part built from its config has parameters; True
    also when it cannot be built alone (heads hold weights, but for rare
    parameter-free ones such as mmpretrain's ``ClsHead``)."""
    from mmengine.registry import MODELS, DefaultScope
    try:
        with DefaultScope.overwrite_default_scope(scope):
            module = MODELS.build(part)
    except Exception:  # a part that needs its model's arguments
        return True
    return any(True for _ in module.parameters())


def _check_heads(state_dict, model, where, path, label, scope):
    """Fail when a checkpoint has no weights for a head of the config's
    model, e.g. a segmentor's checkpoint given to a classifier: mmengine
    would warn and test or train that head from random weights.

    Args:
        state_dict (dict): The weights of the whole model.
        model (dict): The model config.
        where (str): The model's key in the config, for messages.
        path (str): The checkpoint file, for messages.
        label (str): What gives the checkpoint, for messages.
        scope (str): The config's task library.
    """
    prefixes = {key.split('.', 1)[0] for key in state_dict}
    missing = [
        name for name, part in model.items()
        if name.endswith('head') and isinstance(part, dict)
        and name not in prefixes and _holds_weights(part, scope)
    ]
    if missing:
        raise ValueError(
            f'{label}: {path} has no weights for '
            f'{", ".join(f"{where}.{name}" for name in missing)} (it holds '
            f'{", ".join(sorted(prefixes))}): a checkpoint of another '
            'model, whose missing parts would stay random')


def _check_model_weights(state_dict, model, where, arch, path, label,
                         scope):
    """Fail unless a whole-model state dict loads into the config's model:
    ``backbone.`` keys of its L2ViT and weights for each of its heads, a
    classifier of its size."""
    if not any(k.startswith('backbone.') for k in state_dict):
        raise ValueError(
            f'{label}: {path} has no "backbone." keys, so it would '
            'load nothing into the model; convert the authors\' checkpoint '
            'with tools/model_converters/l2vit2mmpretrain.py')
    _check_l2vit_arch(state_dict, arch, path, label)
    _check_heads(state_dict, model, where, path, label, scope)
    _check_classifier_size(state_dict, model.get('head'), path, label,
                           where)


def check_test_checkpoint(cfg, path):
    """Fail early when the config's backbone or the checkpoint to test
    does not fit.

    mmengine loads a test checkpoint without ``strict``: an unconverted
    checkpoint of the authors, or one of another L2ViT size or head size,
    would be tested with random weights after a warning.

    Args:
        cfg (Config): The test config (a TTA wrapper is looked through).
        path (str): The checkpoint file (``~`` is expanded, as mmengine
            does) or a URL, which mmengine fetches and is not checked.
    """
    from ..converters import (CheckpointError, extract_state_dict,
                              load_checkpoint_file)
    model, where, arch = _l2vit_model(cfg)
    path = local_checkpoint(path)
    if model is None or path is None:
        return
    try:
        state_dict = extract_state_dict(load_checkpoint_file(path))
    except CheckpointError as e:
        raise ValueError(f'checkpoint: {e}') from None
    _check_model_weights(state_dict, model, where, arch, path, 'checkpoint',
                         get_task_scope(cfg))


def check_backbone(cfg):
    """Fail early, with a clear message, on a bad L2ViT backbone config.

    Runs before the runner creates the work dir, so a config with an
    unknown arch, a missing pre-trained checkpoint or a checkpoint of
    another backbone (or another L2ViT size) leaves no work dir behind.
    Both a backbone's and a model's ``init_cfg=dict(type='Pretrained')``
    are checked (the 22K -> 1K configs load the whole classifier); a
    model-level checkpoint must hold ``backbone.`` keys and a
    ``head.fc.weight`` of the config's head size. Backbones of other types
    are not checked.

    Args:
        cfg (Config): A loaded training config (a test checkpoint is
            checked by :func:`check_test_checkpoint`).
    """
    model, where, arch = _l2vit_model(cfg)
    if model is None:
        return
    backbone = model['backbone']
    loaded = _pretrained_weights(
        backbone.get('init_cfg'), f'{where}.backbone',
        'convert the authors\' ImageNet weights with '
        'tools/model_converters/l2vit2mmpretrain.py (see '
        f'docs/detection_segmentation.md) or set {where}.backbone.init_cfg='
        'None to train from scratch')
    if loaded is not None:
        path, state_dict = loaded
        _check_l2vit_arch(state_dict, arch, path,
                          f'{where}.backbone.init_cfg')
    loaded = _pretrained_weights(
        model.get('init_cfg'), where,
        'convert the authors\' ImageNet-22K weights and cut their head with '
        'tools/model_converters/l2vit_cut_head_22kto1k.py (see README, '
        f'"ImageNet-22K -> 1K fine-tuning") or set {where}.init_cfg=None')
    if loaded is not None:
        path, state_dict = loaded
        _check_model_weights(state_dict, model, where, arch, path,
                             f'{where}.init_cfg', get_task_scope(cfg))


def _check_checkpoint_file(path, what):
    """Fail early, naming the path, when a checkpoint to load is missing.

    Args:
        path (str): A local path (``~`` is expanded, as mmengine does) or a
            URL, which mmengine fetches and is not checked.
        what (str): What the file is, e.g. ``'--resume checkpoint'``.
    """
    local = local_checkpoint(path)
    if local is None or osp.isfile(local):
        return
    raise FileNotFoundError(f'{what} not found: {path!r}')


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


def _count_accumulation_in_base_batch(cfg):
    """Make mmengine's lr scaling count gradient accumulation.

    The configs give ``auto_scale_lr.base_batch_size`` as the recipe's
    total batch (GPUs x batch per GPU x ``accumulative_counts``), but
    mmengine scales the lr by GPUs x batch per GPU over the base, which
    would cut the lr of an accumulating recipe by its accumulation count.
    The base is the recipe's total batch over
    ``optim_wrapper.accumulative_counts``, so that the ratio is that of the
    total batches. The total is kept as ``auto_scale_lr.total_batch_size``
    and the base computed from it again, so that the config that the run
    dumps in its work dir scales the same way when run again.

    Args:
        cfg (Config): The config with ``auto_scale_lr`` enabled; modified
            in place.
    """
    scale = cfg.auto_scale_lr
    total = scale.setdefault('total_batch_size', scale.base_batch_size)
    scale.base_batch_size = total / cfg.optim_wrapper.get(
        'accumulative_counts', 1)


def merge_train_args(cfg, args):
    """Apply ``tools/train.py`` flags to a config.

    A missing ``--resume``/``load_from`` checkpoint fails here, with a
    message that names it. The data folders and the backbone are checked
    by :func:`check_data_paths` and :func:`check_backbone` afterwards.

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
    _merge_common_args(cfg, args)
    if args.auto_scale_lr:
        # After --cfg-options, which may set the base batch size.
        if not (cfg.get('auto_scale_lr') or {}).get('base_batch_size'):
            raise ValueError('--auto-scale-lr needs auto_scale_lr='
                             'dict(base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True
    scale = cfg.get('auto_scale_lr') or {}
    if scale.get('enable') and scale.get('base_batch_size'):
        # Also when enabled by --cfg-options or in the config itself.
        _count_accumulation_in_base_batch(cfg)
    load_from = cfg.get('load_from')
    if isinstance(load_from, str):
        explicit = args.resume not in (None, 'auto')
        _check_checkpoint_file(
            load_from, f'{"--resume" if explicit else "load_from"} checkpoint')
    if args.no_validate:
        # After --cfg-options, which may name val_* keys of the config.
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if scope == 'mmpretrain':
        _set_mmpretrain_dataloader_defaults(cfg)
    return cfg


def _enable_visualization(cfg, show_dir, show=False, wait_time=2.):
    """Draw test predictions into ``show_dir`` and/or a window (``show``),
    as each library's ``tools/test.py --show-dir/--show/--wait-time``."""
    scope = get_task_scope(cfg)
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        flags = ' and '.join(
            f for f, on in (('--show-dir', show_dir), ('--show', show)) if on)
        raise ValueError(f'{flags} needs default_hooks.visualization in '
                         'the config')
    if show_dir:
        # mmdet draws into the work dir's run folder, the others where
        # they are told.
        _check_writable_arg(
            '--show-dir', show_dir,
            osp.join(cfg.work_dir, show_dir)
            if scope == 'mmdet' else show_dir, folder=True)
    if show:
        hook.update(show=True, wait_time=wait_time)
    if scope == 'mmpretrain':
        hook.update(enable=True, out_dir=show_dir, interval=1)
    elif scope == 'mmdet':
        hook.update(draw=True)
        if show_dir:
            hook.update(test_out_dir=show_dir)
    else:
        # mmseg's hook draws every 50th batch by default; --show-dir means
        # every prediction, as in mmdet and mmpretrain.
        hook.update(draw=True, interval=1)
        if show_dir:
            cfg.visualizer['save_dir'] = show_dir


#: mmseg metrics that write predictions to their ``output_dir``.
SEG_OUTPUT_METRICS = ('IoUMetric', 'CityscapesMetric')


def _set_seg_output_dir(cfg, out):
    """Point the mmseg metrics of ``test_evaluator`` (one or a list) at
    ``out``, keeping the prediction maps they write there."""
    evaluators = cfg.test_evaluator
    if not isinstance(evaluators, (list, tuple)):
        evaluators = [evaluators]
    writers = [e for e in evaluators if config_type(e) in SEG_OUTPUT_METRICS]
    if not writers:
        raise ValueError(
            f'--out needs one of {list(SEG_OUTPUT_METRICS)} in '
            'test_evaluator (mmseg metrics write the predictions), got '
            f'{[config_type(e) for e in evaluators]}')
    for evaluator in writers:
        evaluator.update(output_dir=out, keep_results=True)


def _check_writable_arg(flag, value, path, folder):
    """Refuse ``flag value`` when the file or folder ``path`` it names
    could not be written (see :func:`unwritable_reason`)."""
    reason = unwritable_reason(path, folder)
    if reason:
        raise ValueError(f'cannot write {flag} {value}: {reason}')


def _dump_results(cfg, out):
    """Make the test write its predictions to ``out`` (``--out``): a
    pickle file (mmpretrain, mmdet) or a folder of maps (mmseg), refused
    now if it could not be written, not once the test has run."""
    scope = get_task_scope(cfg)
    if scope != 'mmseg' and not out.endswith(('.pkl', '.pickle')):
        # mmdet's DumpDetResults refuses it once the test has run,
        # mmengine's DumpResults once the model is built.
        raise ValueError(f'--out {out}: {scope} dumps results to a .pkl or '
                         '.pickle file')
    _check_writable_arg('--out', out, out, folder=scope == 'mmseg')
    if scope == 'mmseg':
        _set_seg_output_dir(cfg, out)
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

    A missing checkpoint fails here, with a message that names it.

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed ``tools/test.py`` arguments.

    Returns:
        Config: ``cfg``.
    """
    scope = get_task_scope(cfg)
    _check_checkpoint_file(args.checkpoint, 'checkpoint')
    cfg.load_from = args.checkpoint
    # --cfg-options first: they may name keys of the config's evaluator,
    # which --out turns into a list.
    _merge_common_args(cfg, args)
    if args.show_dir or args.show:
        _enable_visualization(cfg, args.show_dir, args.show, args.wait_time)
    if args.out:
        _dump_results(cfg, args.out)
    if args.tta:
        enable_tta(cfg, scope)
    _test_ema_weights_only(cfg)
    if scope == 'mmpretrain':
        _set_mmpretrain_dataloader_defaults(cfg)
    return cfg


def _test_ema_weights_only(cfg):
    """Test a checkpoint's EMA weights only, not its trained ones as well.

    The configs validate both while training (mmpretrain's ``EMAHook`` with
    ``evaluate_on_origin=True``). In a test the second run over the data
    would write ``--out`` and ``--show-dir`` again, with the trained
    weights' predictions in place of the EMA weights', whose metrics the
    test reports.

    Args:
        cfg (Config): A test config; modified in place.
    """
    for hook in cfg.get('custom_hooks', []):
        if config_type(hook) == 'EMAHook' and hook.get('evaluate_on_origin'):
            hook.evaluate_on_origin = False


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
