# Copyright (c) l2vit_mm contributors. All rights reserved.
"""One train/test set-up for mmpretrain, mmdet and mmseg configs.

``tools/train.py`` and ``tools/test.py`` dispatch on the config's
``default_scope`` and apply the same command-line flags that each library's
own tools accept, with that library's conventions where they differ
(visualisation hooks, result dumping, dataloader defaults).
"""
import os.path as osp
from copy import deepcopy

from mmengine.config import ConfigDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..fileio import unwritable_reason
from .config_type import config_type
from .cpu_distributed import setup_cpu_distributed
from .dataset_configs import dataloader_configs
from .model_checks import local_checkpoint
from .task_scope import get_task_scope
from .test_time_aug import enable_tta


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
    for split, loader in dataloader_configs(cfg):
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


def _check_amp_device():
    """Refuse ``--amp`` where mmengine's ``AmpOptimWrapper`` would: on a
    machine without CUDA, NPU, MLU or MUSA device (it asserts so once the
    runner is built, after the work dir is made).

    Raises:
        ValueError: No such device.
    """
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    if not (amp.is_cuda_available() or amp.is_npu_available()
            or amp.is_mlu_available() or amp.is_musa_available()):
        raise ValueError('--amp needs a GPU (CUDA, NPU, MLU or MUSA): '
                         "mmengine's AmpOptimWrapper does not train on the "
                         'CPU')


def merge_train_args(cfg, args):
    """Apply ``tools/train.py`` flags to a config.

    ``--amp`` without a GPU and a missing ``--resume``/``load_from``
    checkpoint fail here, with a message that names the problem. The data
    folders and the backbone are checked by :func:`check_data_paths` and
    :func:`check_backbone` afterwards.

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed ``tools/train.py`` arguments.

    Returns:
        Config: ``cfg``.
    """
    scope = get_task_scope(cfg)
    if args.amp:
        _check_amp_device()
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
