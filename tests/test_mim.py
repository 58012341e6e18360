# Copyright (c) l2vit_mm contributors. All rights reserved.
"""`mim train l2vit_mm CONFIG` and `mim test` run the packaged tools."""
import os
import os.path as osp
import shutil
import subprocess
import sys

from l2vit_mm.demo import make_digits_imagenet
from tests.conftest import REPO
from tests.test_cls_train_test import data_options

MIM = shutil.which('mim', path=osp.dirname(sys.executable))
CONFIG = REPO / 'configs' / 'demo' / 'l2vit-demo_digits.py'


def test_configs_and_tools_are_packaged_for_mim():
    import l2vit_mm
    mim_root = osp.join(osp.dirname(l2vit_mm.__file__), '.mim')
    for name in ('configs/l2vit/l2vit-tiny_8xb128-acc4_in1k.py',
                 'tools/train.py', 'tools/test.py', 'model-index.yml'):
        assert osp.isfile(osp.join(mim_root, name)), name


def test_mim_train_and_test(tmp_path):
    assert MIM, 'openmim (requirements/tests.txt) is not installed'
    root = tmp_path / 'digits'
    make_digits_imagenet(str(root))
    work_dir = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=str(REPO))
    train = subprocess.run([
        MIM, 'train', 'l2vit_mm',
        str(CONFIG), '--work-dir',
        str(work_dir), '--cfg-options', *data_options(root, 1)
    ], capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()
    test = subprocess.run([
        MIM, 'test', 'l2vit_mm',
        str(CONFIG), '--checkpoint',
        str(checkpoint), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *data_options(root, 1)
    ], capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    assert 'accuracy/top1' in test.stdout + test.stderr


def test_mim_search_lists_the_model_index():
    assert MIM, 'openmim (requirements/tests.txt) is not installed'
    result = subprocess.run([MIM, 'search', 'l2vit_mm'],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ('l2vit-tiny_8xb128-acc4_in1k',
                 'l2vit-base_in21k-pre_8xb64-acc2_in1k-384px'):
        assert f'config id: {name}' in result.stdout.lower()


def test_wheel_packages_configs_and_tools(tmp_path):
    """A regular (non-editable) install gets copies under l2vit_mm/.mim."""
    import zipfile
    src = tmp_path / 'src'
    archive = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'],
                             capture_output=True, text=True, cwd=str(REPO))
    for name in archive.stdout.split():
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, src / name)
    build = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(tmp_path / 'dist'),
        str(src)
    ], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel, = (tmp_path / 'dist').glob('l2vit_mm-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ('configs/l2vit/l2vit-tiny_8xb128-acc4_in1k.py',
                 'configs/l2vit/metafile.yml',
                 'configs/_base_/models/l2vit/l2vit-tiny.py',
                 'tools/train.py', 'tools/dist_train.sh', 'model-index.yml'):
        assert f'l2vit_mm/.mim/{name}' in names, name
    assert 'l2vit_mm/models/backbones/l2vit.py' in names
    # The demo's own imports (digits, plots, scene masks) are an extra.
    metadata, = (n for n in names if n.endswith('.dist-info/METADATA'))
    requires = [
        line.split(':', 1)[1].strip()
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith('Requires-Dist:')
    ]
    for dist in ('scikit-learn', 'matplotlib', 'pycocotools'):
        assert f'{dist}; extra == "demo"' in requires, requires
