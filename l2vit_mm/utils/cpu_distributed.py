# Copyright (c) l2vit_mm contributors. All rights reserved.
"""``--launcher pytorch`` on machines without CUDA (gloo, CPU DDP)."""
import os
import sys
import warnings

import torch
import torch.distributed as dist
from mmengine.config import ConfigDict


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
