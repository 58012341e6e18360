# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Detection and segmentation demo of L2ViT on generated digit scenes.

For Mask R-CNN (COCO format, bbox and segm AP) and UperNet (ADE20K layout,
mIoU) this generates the scenes, trains the demo config through
``tools/train.py``, tests both the trained model and the untrained one (its
initial weights) through ``tools/test.py``, and writes loss curves,
visualised predictions and a summary under ``--out-dir``.

Example::

    python demo/dense_demo.py --out-dir demo_outputs/dense
"""
import argparse
import glob
import json
import os
import os.path as osp
import time

from l2vit_mm.demo.logged_scalars import read_logged_scalars
from l2vit_mm.demo.run_script import run_script
from l2vit_mm.utils import CfgOptionsAction, cfg_option

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = {
    'det':
    dict(
        name='Mask R-CNN',
        config='configs/demo/mask-rcnn_l2vit-demo_fpn_digit-scenes.py',
        data='coco_scenes',
        metrics={
            'bbox AP': 'coco/bbox_mAP',
            'bbox AP50': 'coco/bbox_mAP_50',
            'segm AP': 'coco/segm_mAP',
            'segm AP50': 'coco/segm_mAP_50',
        }),
    'seg':
    dict(
        name='UperNet',
        config='configs/demo/upernet_l2vit-demo_digit-scenes.py',
        data='ade_scenes',
        metrics={
            'mIoU': 'mIoU',
            'mAcc': 'mAcc',
            'aAcc': 'aAcc'
        }),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train and test L2ViT Mask R-CNN and UperNet on '
        'generated digit scenes')
    parser.add_argument(
        '--out-dir',
        default='demo_outputs/dense',
        help='folder for data, work dirs, curves and predictions')
    parser.add_argument(
        '--tasks',
        nargs='+',
        choices=sorted(TASKS),
        default=sorted(TASKS),
        help='which demos to run')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        type=cfg_option,
        default=[],
        help='extra overrides passed to tools/train.py and tools/test.py of '
        'every task in --tasks, e.g. train_dataloader.batch_size=4; name '
        'one task for an override that fits only its config (det trains '
        'by epochs: --tasks det --cfg-options train_cfg.max_epochs=1)')
    return parser.parse_args(argv)


def data_options(task, data_root):
    """Point the dataloaders (and the COCO evaluators) at ``data_root``.

    Args:
        task (str): ``'det'`` or ``'seg'``.
        data_root (str): Root of the generated data set.

    Returns:
        list[str]: ``--cfg-options`` entries.
    """
    options = [
        f'{split}_dataloader.dataset.data_root={data_root}'
        for split in ('train', 'val', 'test')
    ]
    if task == 'det':
        ann_file = osp.join(data_root, 'annotations', 'instances_val.json')
        options += [
            f'val_evaluator.ann_file={ann_file}',
            f'test_evaluator.ann_file={ann_file}'
        ]
    return options


def save_untrained_checkpoint(config, options, path):
    """Build a model from its config and save its initial weights.

    Args:
        config (str): Config path.
        options (list[str]): ``--cfg-options`` style overrides.
        path (str): Destination checkpoint.
    """
    import importlib

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import l2vit_mm  # noqa: F401 (registers L2ViT)
    cfg = Config.fromfile(osp.join(REPO, config))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    cfg.merge_from_dict(
        parser.parse_args(['--cfg-options', *options]).cfg_options)
    init_default_scope(cfg.default_scope)
    registry = importlib.import_module(f'{cfg.default_scope}.registry')
    torch.manual_seed(0)
    model = registry.MODELS.build(cfg.model)
    model.init_weights()
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)


def read_test_metrics(work_dir):
    """Read the metrics that ``tools/test.py`` logged in ``work_dir``.

    Args:
        work_dir (str): The ``--work-dir`` of a test run.

    Returns:
        dict: Metric name to value.
    """
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    if not logs:
        raise FileNotFoundError(f'no metrics json in {work_dir}')
    with open(logs[-1]) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def plot_losses(records, title, path):
    """Plot the total and component losses against the iteration.

    Args:
        records (list[dict]): Logged training scalars.
        title (str): Figure title.
        path (str): Destination PNG.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    steps = [r.get('iter', r.get('step')) for r in records]
    keys = [k for k in records[0] if k.startswith('loss') or k.endswith(
        '.loss_ce')]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        ax.plot(steps, [r[key] for r in records], label=key,
                linewidth=2.5 if key == 'loss' else 1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_yscale('log')
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_task(task, out_dir, extra_options):
    """Generate the data, train, test trained and untrained, plot.

    Args:
        task (str): ``'det'`` or ``'seg'``.
        out_dir (str): Output root.
        extra_options (list[str]): Overrides for training and testing.

    Returns:
        dict: Metrics of the trained and untrained models, times, paths.
    """
    from l2vit_mm.demo import make_ade_scenes, make_coco_scenes
    spec = TASKS[task]
    data_root = osp.join(out_dir, 'data', spec['data'])
    make = make_coco_scenes if task == 'det' else make_ade_scenes
    start = time.time()
    counts = make(data_root)
    print(f'[{spec["name"]}] scenes in {data_root}: {counts} '
          f'({time.time() - start:.1f}s)', flush=True)

    work_dir = osp.join(out_dir, task)
    options = data_options(task, data_root) + list(extra_options)
    train_time = run_script(REPO, 'tools/train.py', spec['config'],
                            '--work-dir', osp.join(work_dir, 'train'),
                            '--no-validate', '--cfg-options', *options)
    checkpoint = sorted(
        glob.glob(osp.join(work_dir, 'train', '*.pth')),
        key=osp.getmtime)[-1]
    show_dir = osp.join(work_dir, 'predictions')
    run_script(REPO, 'tools/test.py', spec['config'], checkpoint,
               '--work-dir', osp.join(work_dir, 'test'), '--show-dir',
               show_dir, '--cfg-options', *options)
    untrained = osp.join(work_dir, 'untrained.pth')
    save_untrained_checkpoint(spec['config'], options, untrained)
    run_script(REPO, 'tools/test.py', spec['config'], untrained,
               '--work-dir', osp.join(work_dir, 'test_untrained'),
               '--cfg-options', *options)

    records = [r for r in read_logged_scalars(osp.join(work_dir, 'train'))
               if 'loss' in r]
    curve = osp.join(work_dir, 'loss_curve.png')
    plot_losses(records, f'L2ViT demo {spec["name"]}: training loss', curve)
    trained = read_test_metrics(osp.join(work_dir, 'test'))
    baseline = read_test_metrics(osp.join(work_dir, 'test_untrained'))
    return dict(
        name=spec['name'],
        iterations=records[-1].get('iter', records[-1].get('step')),
        train_seconds=round(train_time, 1),
        trained={k: trained[v]
                 for k, v in spec['metrics'].items()},
        untrained={k: baseline[v]
                   for k, v in spec['metrics'].items()},
        checkpoint=checkpoint,
        loss_curve=curve,
        predictions=drawn_predictions(show_dir))


def drawn_predictions(show_dir, count=3):
    """The first images drawn by a test run's ``--show-dir``.

    Args:
        show_dir (str): The folder; mmdet writes ``.jpg``, mmseg ``.png``
            files (under ``vis_data/vis_image``).
        count (int): How many to return. Defaults to 3.

    Returns:
        list[str]: Paths of drawn images, sorted.
    """
    found = [
        path for ext in ('jpg', 'png')
        for path in glob.glob(osp.join(show_dir, '**', f'*.{ext}'),
                              recursive=True)
    ]
    return sorted(found)[:count]


def main(argv=None):
    args = parse_args(argv)
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    results = {
        task: run_task(task, out_dir, args.cfg_options)
        for task in args.tasks
    }
    results['total_seconds'] = round(time.time() - start, 1)
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print('\n==== L2ViT dense demo on generated digit scenes ====')
    for task in args.tasks:
        result = results[task]
        print(f'{result["name"]}: {result["iterations"]} iterations, '
              f'{result["train_seconds"]}s training')
        for key, value in result['trained'].items():
            print(f'  {key:10s} trained {value:7.3f}   untrained '
                  f'{result["untrained"][key]:7.3f}')
        print(f'  loss curve: {result["loss_curve"]}')
        if result['predictions']:
            print(f'  predictions: {osp.dirname(result["predictions"][0])}')
    print(f'total {results["total_seconds"]}s; summary: '
          f'{osp.join(out_dir, "summary.json")}')


if __name__ == '__main__':
    main()
