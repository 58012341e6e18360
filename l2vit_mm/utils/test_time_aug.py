# Copyright (c) l2vit_mm contributors. All rights reserved.
"""``tools/test.py --tta``: test-time augmentation as each library's tool.

mmpretrain's and mmdet's tools fall back to a horizontal-flip TTA when the
config has no ``tta_model``/``tta_pipeline``; mmseg's tool needs both in the
config (its ``default_runtime`` gives ``tta_model``, its dataset bases give
``tta_pipeline``).
"""
from copy import deepcopy

from mmengine.config import ConfigDict

from .config_type import config_type
from .dataset_configs import leaf_datasets

#: ``PackDetInputs`` meta keys of mmdet's flip TTA.
DET_TTA_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction')


def _flip_tta(last_transform):
    """A ``TestTimeAug`` step: with and without a horizontal flip, then
    ``last_transform`` (the packing transform)."""
    return dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=1.),
            dict(type='RandomFlip', prob=0.)
        ], [last_transform]])


def _has_mask_head(model):
    """Whether an mmdet model config predicts masks."""
    roi_head = model.get('roi_head')
    return isinstance(roi_head, dict) and \
        roi_head.get('mask_head') is not None


def enable_tta(cfg, scope):
    """Test with the config's ``tta_model`` on its ``tta_pipeline``.

    A config whose model already wraps another (``module``, as the
    ``-ms-flip`` configs) is left as it is.

    Args:
        cfg (Config): The config; modified in place.
        scope (str): Its ``default_scope``: ``'mmpretrain'``, ``'mmdet'``
            or ``'mmseg'``.

    Raises:
        ValueError: An mmseg config without ``tta_model``/``tta_pipeline``,
            or an mmdet model with a mask head (mmdet's ``DetTTAModel``
            merges boxes only).
    """
    if 'module' in cfg.model:
        return
    if scope == 'mmseg':
        missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
        if missing:
            raise ValueError(f'--tta needs {" and ".join(missing)} in the '
                             'config (mmseg has no default)')
    if scope == 'mmdet' and _has_mask_head(cfg.model):
        raise ValueError(
            "--tta: mmdet's DetTTAModel merges boxes only; models with a "
            'mask head (Mask R-CNN, Cascade Mask R-CNN) cannot use it')
    if 'tta_model' not in cfg:
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
        ) if scope == 'mmdet' else dict(type='mmpretrain.AverageClsScoreTTA')
    leaves = list(leaf_datasets(cfg.test_dataloader.dataset))
    if 'tta_pipeline' not in cfg:
        pipeline = leaves[0].pipeline
        last = dict(type='PackDetInputs', meta_keys=DET_TTA_META_KEYS) \
            if scope == 'mmdet' else pipeline[-1]
        cfg.tta_pipeline = [*deepcopy(pipeline[:-1]), _flip_tta(last)]
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    for leaf in leaves:
        leaf.pipeline = cfg.tta_pipeline
    # EMAHook saves the averaged weights as the checkpoint's state_dict, so
    # a test loads them anyway; but the hook's own copy of a TTA-wrapped
    # model does not take them (mmengine 0.10.7) and it would test that
    # copy's initial weights instead.
    cfg.custom_hooks = [
        hook for hook in cfg.get('custom_hooks', [])
        if config_type(hook) != 'EMAHook'
    ]
