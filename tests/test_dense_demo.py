# Copyright (c) l2vit_mm contributors. All rights reserved.
"""``demo/dense_demo.py --tasks det`` as docs/detection_segmentation.md
shows it, shortened (one epoch on a few scenes)."""
import json
import subprocess
import sys

from tests.conftest import REPO


def test_dense_demo_runs_one_task(tmp_path):
    out_dir = tmp_path / 'dense_det'
    result = subprocess.run([
        sys.executable,
        str(REPO / 'demo' / 'dense_demo.py'), '--tasks', 'det', '--out-dir',
        str(out_dir), '--cfg-options', 'train_cfg.max_epochs=1',
        'train_dataloader.dataset.indices=16',
        'test_dataloader.dataset.indices=8'
    ], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out_dir / 'summary.json').read_text())
    assert sorted(summary) == ['det', 'total_seconds']
    det = summary['det']
    assert det['name'] == 'Mask R-CNN'
    assert sorted(det['trained']) == sorted(det['untrained']) == [
        'bbox AP', 'bbox AP50', 'segm AP', 'segm AP50']
    assert (out_dir / 'det' / 'loss_curve.png').is_file()
    assert det['predictions'] and all(
        path.endswith('.jpg') for path in det['predictions'])
    assert not (out_dir / 'seg').exists()
    assert 'Mask R-CNN: ' in result.stdout and 'UperNet' not in result.stdout
