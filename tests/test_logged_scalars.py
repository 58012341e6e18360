# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The demos read the scalars of mmengine's newest run in a work dir."""
import json

import pytest

from l2vit_mm.demo.logged_scalars import read_logged_scalars


def test_reads_the_newest_run(tmp_path):
    for stamp, loss in (('20261127_050000', 2.), ('20261127_060000', 1.)):
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        records = [dict(loss=loss, step=1), dict(loss=loss / 2, step=2)]
        (vis / 'scalars.json').write_text(
            '\n'.join(json.dumps(r) for r in records) + '\n\n' +
            json.dumps({'accuracy/top1': 50., 'step': 1}) + '\n')
    assert read_logged_scalars(str(tmp_path)) == [
        dict(loss=1., step=1), dict(loss=.5, step=2),
        {'accuracy/top1': 50., 'step': 1}
    ]


def test_no_run_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=f'no scalars.json under {tmp_path}'):
        read_logged_scalars(str(tmp_path))
