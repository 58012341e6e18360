# Copyright (c) l2vit_mm contributors. All rights reserved.
"""`make demo`: the ImageNet recipe of L2ViT trained for real, on digits.

1. Params/FLOPs of L2ViT-T/S/B, computed live with mmengine's counter.
2. scikit-learn's handwritten digits written as an ImageNet image folder.
3. ``tools/train.py`` on ``configs/demo/l2vit-demo_digits.py`` (the L2ViT-T
   recipe with a reduced model, 32-pixel images and a short schedule).
4. ``tools/test.py`` on the last checkpoint (EMA weights, as evaluated).
5. A loss/accuracy curve PNG and drawn predictions of
   ``demo/image_demo.py`` (mmpretrain's ``ImageClassificationInferencer``).
"""
import argparse
import glob
import os
import os.path as osp
import time

from mmengine.config import Config

from l2vit_mm.demo.logged_scalars import read_logged_scalars
from l2vit_mm.demo.run_script import run_script
from l2vit_mm.utils.model_complexity import (complexity, counted_part,
                                             format_table)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

BASES = osp.join(REPO, 'configs', '_base_', 'models', 'l2vit')
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'l2vit-demo_digits.py')
NUM_CLASSES = 10


def section(title):
    print(f'\n=== {title} ===', flush=True)


def complexity_table():
    """Print params and FLOPs of the published variants, measured now."""
    section('L2ViT params and FLOPs (mmengine.analysis, measured now)')
    rows = []
    for arch, size, window in [('tiny', 224, 7), ('small', 224, 7),
                               ('base', 224, 7), ('base', 384, 12)]:
        cfg = Config.fromfile(osp.join(BASES, f'l2vit-{arch}.py'))
        cfg.model.backbone.window_size = window
        params, flops = complexity(cfg, (size, size))
        rows.append((f'l2vit-{arch} (window {window})', (size, size),
                     params, flops, counted_part(cfg)))
    print(format_table(rows))
    print('published: T 28.60M/4.71G, S 50.20M/9.02G, B 88.58M/15.86G, '
          'B-384 88.58M/47.47G')


def plot_curves(train, val, path):
    """Save training loss (by iteration) and val top-1 (by epoch) as a PNG.

    Args:
        train (list[dict]): Records with ``iter`` and ``loss``.
        val (list[dict]): Records with ``step`` (epoch),
            ``accuracy/top1`` (EMA weights) and ``accuracy/top1_origin``
            (trained weights).
        path (str): Output PNG.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot([r['iter'] for r in train], [r['loss'] for r in train])
    ax_loss.set(xlabel='iteration', ylabel='training loss',
                title='L2ViT demo: loss')
    for key, weights in (('accuracy/top1', 'EMA'),
                         ('accuracy/top1_origin', 'trained')):
        ax_acc.plot([r['step'] for r in val], [r[key] for r in val],
                    marker='o', label=f'val top-1 ({weights} weights)')
    ax_acc.axhline(100 / NUM_CLASSES, color='gray', linestyle='--',
                   label='chance')
    ax_acc.set(xlabel='epoch', ylabel='top-1 (%)', ylim=(0, 100),
               title='L2ViT demo: accuracy')
    ax_acc.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', default='demo_outputs')
    parser.add_argument(
        '--data-root',
        default='data/demo/digits',
        help='where the digits folder is written (the demo config reads it)')
    args = parser.parse_args()
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()

    complexity_table()

    section('Data: scikit-learn digits as an ImageNet folder')
    from l2vit_mm.demo import make_digits_imagenet
    data_root = osp.join(REPO, args.data_root)
    counts = make_digits_imagenet(data_root)
    print(f'{data_root}: {counts["train"]} train / {counts["val"]} val '
          f'images, {NUM_CLASSES} classes')

    work_dir = osp.join(out_dir, 'cls')
    data_options = [
        f'{split}_dataloader.dataset.data_root={data_root}'
        for split in ('train', 'val', 'test')
    ]
    section('Train: tools/train.py (reduced L2ViT, L2ViT-T recipe)')
    run_script(REPO, 'tools/train.py', DEMO_CONFIG, '--work-dir', work_dir,
               '--cfg-options', *data_options)
    records = read_logged_scalars(work_dir)
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if 'accuracy/top1' in r]

    section('Test: tools/test.py on the last checkpoint')
    checkpoint = osp.join(work_dir, f'epoch_{int(val[-1]["step"])}.pth')
    run_script(REPO, 'tools/test.py', DEMO_CONFIG, checkpoint, '--work-dir',
               osp.join(work_dir, 'test'), '--out',
               osp.join(work_dir, 'test_predictions.pkl'), '--cfg-options',
               *data_options)

    section('Curves and drawn predictions')
    curve_png = osp.join(out_dir, 'cls_curves.png')
    plot_curves(train, val, curve_png)
    print(f'loss/accuracy curves: {curve_png}')
    images = sorted(glob.glob(osp.join(data_root, 'val', '*', '*.png')))[::40]
    run_script(REPO, 'demo/image_demo.py', *images, DEMO_CONFIG,
               '--checkpoint', checkpoint, '--show-dir',
               osp.join(out_dir, 'cls_predictions'), '--resize', 224)

    section('Summary')
    print('val top-1 by epoch, EMA / trained weights: ' + ', '.join(
        f'{int(r["step"])}: {r["accuracy/top1"]:.2f}% / '
        f'{r["accuracy/top1_origin"]:.2f}%' for r in val))
    print(f'final val top-1 {val[-1]["accuracy/top1"]:.2f}% (EMA weights), '
          f'{val[-1]["accuracy/top1_origin"]:.2f}% (trained weights) '
          f'(chance {100 / NUM_CLASSES:.0f}%), '
          f'{time.time() - start:.0f} s in all')


if __name__ == '__main__':
    main()
