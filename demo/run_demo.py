# Copyright (c) l2vit_mm contributors. All rights reserved.
"""`make demo`: the main jobs of l2vit_mm on data generated here.

1. Params/FLOPs of L2ViT-T/S/B, computed live with mmengine's counter.
2. One forward of the L2ViT-T ImageNet classifier built through the
   mmpretrain registry.
"""
import argparse
import os
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))

from get_flops import build_for_counting, complexity, format_table  # noqa

BASES = osp.join(REPO, 'configs', '_base_', 'models', 'l2vit')


def section(title):
    print(f'\n=== {title} ===', flush=True)


def complexity_table():
    section('L2ViT params and FLOPs (mmengine.analysis, measured now)')
    rows = []
    for arch, size, window in [('tiny', 224, 7), ('small', 224, 7),
                               ('base', 224, 7), ('base', 384, 12)]:
        cfg = Config.fromfile(osp.join(BASES, f'l2vit-{arch}.py'))
        cfg.model.backbone.window_size = window
        params, flops = complexity(cfg, (size, size))
        rows.append((f'l2vit-{arch} (window {window})', (size, size),
                     params, flops))
    print(format_table(rows))
    print('published: T 28.60M/4.71G, S 50.20M/9.02G, B 88.58M/15.86G, '
          'B-384 88.58M/47.47G')


def classifier_forward():
    section('L2ViT-T classifier forward through the mmpretrain registry')
    cfg = Config.fromfile(osp.join(BASES, 'l2vit-tiny.py'))
    model = build_for_counting(cfg)
    x = torch.randn(1, 3, 224, 224)
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(x, mode='tensor')
    print(f'{type(model).__name__}({type(model.backbone).__name__}) '
          f'input {tuple(x.shape)} -> logits {tuple(logits.shape)} in '
          f'{time.perf_counter() - start:.2f}s (random init)')


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out-dir', default='demo_outputs')
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    complexity_table()
    classifier_forward()


if __name__ == '__main__':
    main()
