# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The scalars (losses, metrics) that mmengine logged for a run."""
import glob
import json
import os.path as osp


def read_logged_scalars(work_dir):
    """Read the newest ``*/vis_data/scalars.json`` of an mmengine work dir.

    Args:
        work_dir (str): The run's ``--work-dir``.

    Returns:
        list[dict]: One record per logged step, in order: training records
        have ``loss``, validation records the metrics.

    Raises:
        FileNotFoundError: The work dir holds no ``scalars.json``.
    """
    paths = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not paths:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    with open(paths[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]
