# Copyright (c) l2vit_mm contributors. All rights reserved.
"""tools/dist_train.sh trains a segmentation config with 2 CPU processes and
tools/dist_test.sh tests the result with 2 processes."""
import glob
import os
import os.path as osp
import re
import socket
import subprocess
import sys

from l2vit_mm.demo import make_ade_scenes
from tests.conftest import REPO

CONFIG = REPO / 'configs' / 'demo' / 'upernet_l2vit-demo_digit-scenes.py'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_and_test_two_cpu_processes(tmp_path):
    root = tmp_path / 'ade'
    make_ade_scenes(str(root), num_train=8, num_val=2, image_size=64)
    work_dir = tmp_path / 'work'
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1')
    result = subprocess.run(
        ['bash', str(REPO / 'tools' / 'dist_train.sh'),
         str(CONFIG), '2', '--work-dir', str(work_dir), '--no-validate',
         '--cfg-options', f'train_dataloader.dataset.data_root={root}',
         'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False',
         'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2'],
        capture_output=True, text=True, cwd=str(REPO), env=env,
        timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # Each process says that it joined the gloo group.
    for rank in (0, 1):
        assert f'[rank {rank}/2] no CUDA: running on the CPU with the ' \
            'gloo backend' in output
    # SyncBN of the UperNet and FCN heads falls back to per-process BN.
    assert 'No CUDA: 2 SyncBN layer config(s) use per-process BN' in output
    logs = glob.glob(str(work_dir / '*' / '*.log'))
    assert len(logs) == 1  # rank 0 logs
    log = open(logs[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'Saving checkpoint at 2 iterations' in log
    # Only rank 0 saves, exactly one checkpoint.
    assert sorted(
        osp.basename(p)
        for p in glob.glob(str(work_dir / '*.pth'))) == ['iter_2.pth']
    # dist_test.sh evaluates it with 2 processes: one mIoU over both shards.
    result = subprocess.run(
        ['bash', str(REPO / 'tools' / 'dist_test.sh'),
         str(CONFIG), str(work_dir / 'iter_2.pth'), '2',
         '--work-dir', str(tmp_path / 'test'),
         '--cfg-options', f'test_dataloader.dataset.data_root={root}',
         'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        capture_output=True, text=True, cwd=str(REPO),
        env=dict(env, PORT=str(free_port())), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    logs = glob.glob(str(tmp_path / 'test' / '*' / '*.log'))
    assert len(logs) == 1
    log = open(logs[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    # 2 val images over 2 ranks: one iteration each, then one metric.
    assert re.search(r'Iter\(test\) \[1/1\] +aAcc: [\d.]+ +mIoU: [\d.]+', log)
