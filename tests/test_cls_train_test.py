# Copyright (c) l2vit_mm contributors. All rights reserved.
"""A few-iteration train, resume and test through tools/ on the demo data."""
import glob
import os
import os.path as osp
import subprocess
import sys

import mmengine
import torch

from tests.conftest import REPO, run_tool

CONFIG = REPO / 'configs' / 'demo' / 'l2vit-demo_digits.py'


def data_options(root, epochs):
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_dataloader.dataset.indices=64',
        'val_dataloader.dataset.indices=32',
        'test_dataloader.dataset.indices=32',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0',
        f'train_cfg.max_epochs={epochs}',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=5',
        'param_scheduler.1.end=3',
    ]


def test_train_resume_and_test(digits_root, tmp_path):
    work_dir = tmp_path / 'work'
    run_tool('train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
             *data_options(digits_root, 2))
    first = torch.load(work_dir / 'epoch_2.pth', weights_only=False)
    iters = first['meta']['iter']
    assert iters == 2 * 2  # 64 images / batch 32, 2 epochs

    # The EMA hook keeps EMA weights beside the raw ones, and they differ.
    ema = first['ema_state_dict']
    raw = first['state_dict']
    name = 'backbone.stages.0.0.attn.qkv.weight'
    assert not torch.allclose(ema['module.' + name], raw[name])
    # BatchNorm statistics are averaged too (mmengine's default copies them).
    stats = 'backbone.stages.0.1.local_mp.bn.running_mean'
    assert not torch.allclose(ema['module.' + stats], raw[stats])
    # The best checkpoint by the EMA weights' top-1 is kept.
    assert glob.glob(str(work_dir / 'best_accuracy_top1_epoch_*.pth'))
    # Validation evaluates both, as the authors: EMA and trained weights.
    scalars, = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    val = [r for r in mmengine.list_from_file(scalars) if 'top1' in r]
    assert len(val) == 2
    assert all('"accuracy/top1_origin"' in r for r in val)

    log = run_tool('train.py', CONFIG, '--work-dir', work_dir, '--resume',
                   '--cfg-options', *data_options(digits_root, 3))
    assert 'resumed epoch: 2, iter: 4' in log
    resumed = torch.load(work_dir / 'epoch_3.pth', weights_only=False)
    assert resumed['meta']['iter'] == iters + 2

    show_dir = tmp_path / 'vis'
    out = tmp_path / 'preds.pkl'
    log = run_tool('test.py', CONFIG, work_dir / 'epoch_3.pth', '--work-dir',
                   tmp_path / 'test', '--out', out, '--show-dir', show_dir,
                   '--cfg-options', *data_options(digits_root, 3))
    assert 'accuracy/top1' in log
    # A test evaluates the checkpoint's (EMA) weights only: a second run
    # would overwrite --out and --show-dir with the trained weights'.
    assert 'top1_origin' not in log
    assert out.is_file()
    assert len(glob.glob(str(show_dir / '*.png'))) == 32

    # --tta with two unflipped views averages two copies of the plain
    # test's scores: the EMA-trained weights must reach the TTA model.
    identity_tta = tmp_path / 'digits_identity_tta.py'
    identity_tta.write_text(
        f'_base_ = {str(CONFIG)!r}\n'
        "tta_pipeline = [dict(type='LoadImageFromFile'), dict(\n"
        "    type='TestTimeAug', transforms=[\n"
        "        [dict(type='RandomFlip', prob=0.)] * 2,\n"
        "        [dict(type='PackInputs')]])]\n")
    tta_out = tmp_path / 'preds_tta.pkl'
    log = run_tool('test.py', identity_tta, work_dir / 'epoch_3.pth',
                   '--work-dir', tmp_path / 'test_tta', '--tta', '--out',
                   tta_out, '--cfg-options', *data_options(digits_root, 3))
    assert "type='mmpretrain.AverageClsScoreTTA'" in log
    plain, tta = (mmengine.load(f) for f in (out, tta_out))
    assert len(plain) == len(tta) == 32
    for a, b in zip(plain, tta):
        torch.testing.assert_close(a['pred_score'], b['pred_score'])


def test_train_with_compiled_backbone(digits_root, tmp_path):
    """``model.backbone.compile`` from the command line: the backbone is
    compiled (train and val), the optimizer, EMA and checkpoints work as in
    eager mode. The ``aot_eager`` backend keeps it fast on a CPU."""
    work_dir = tmp_path / 'work'
    log = run_tool('train.py', CONFIG, '--work-dir', work_dir,
                   '--cfg-options', *data_options(digits_root, 1),
                   'model.backbone.compile.backend=aot_eager')
    assert "torch.compile({'dynamic': False, 'backend': 'aot_eager'})" in log
    ckpt = torch.load(work_dir / 'epoch_1.pth', weights_only=False)
    names = [k for k in ckpt['state_dict'] if k.startswith('backbone.')]
    assert 'backbone.stages.0.0.attn.qkv.weight' in names
    assert not any('_orig_mod' in k for k in ckpt['state_dict'])
    assert sorted(ckpt['ema_state_dict']) == sorted(
        ['steps'] + ['module.' + k for k in ckpt['state_dict']])


def test_missing_data_root_fails_before_work_dir(tmp_path):
    work_dir = tmp_path / 'never'
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'train.py'), str(CONFIG),
         '--work-dir', str(work_dir), '--cfg-options',
         f'train_dataloader.dataset.data_root={tmp_path / "nope"}'],
        capture_output=True, text=True, cwd=str(REPO))
    assert result.returncode != 0
    assert 'train_dataloader: data root not found' in result.stderr
    assert str(tmp_path / 'nope') in result.stderr
    assert not osp.exists(work_dir)


def test_unknown_scope_is_an_error(tmp_path):
    cfg = tmp_path / 'bad.py'
    cfg.write_text("default_scope = 'mmocr'\nmodel = dict(type='X')\n")
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'train.py'), str(cfg)],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode != 0
    assert "default_scope must be one of ['mmpretrain', 'mmdet', 'mmseg']" \
        in result.stderr
    assert sorted(os.listdir(tmp_path)) == ['bad.py']  # no work_dirs/
