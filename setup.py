# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Install l2vit_mm.

Runtime requirements are ranges, so that ``pip install -e .`` or
``mim install -e .`` works in an existing CUDA environment with its own torch
and mmcv. The exact CPU stack that ``make`` installs is in ``requirements/``.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

MIM_FILES = ('configs', 'tools', 'model-index.yml', 'demo')


def get_version():
    """Read ``__version__`` from ``l2vit_mm/version.py`` without importing."""
    scope = {}
    with open(osp.join('l2vit_mm', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def add_mim_extension():
    """Put configs, tools and the model index into ``l2vit_mm/.mim``.

    ``mim train l2vit_mm CONFIG`` looks for them there, as for mmpretrain.
    Editable installs get symlinks, other installs get copies.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'install', 'build', 'build_py'} & set(
            sys.argv):
        mode = 'copy'
    else:
        return
    repo = osp.dirname(osp.abspath(__file__))
    mim_path = osp.join(repo, 'l2vit_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(repo, name)
        dst = osp.join(mim_path, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


def mim_package_data():
    """List every file under ``l2vit_mm/.mim`` for ``package_data``.

    Explicit paths, because setuptools before 62.3 does not expand ``**``.

    Returns:
        list[str]: Paths relative to the ``l2vit_mm`` package.
    """
    package = osp.join(osp.dirname(osp.abspath(__file__)), 'l2vit_mm')
    files = []
    for root, _, names in os.walk(osp.join(package, '.mim'), followlinks=True):
        if '__pycache__' in root:
            continue
        files += [osp.relpath(osp.join(root, n), package) for n in names]
    return files


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='l2vit_mm',
        version=get_version(),
        description='L2ViT (linear global + local window attention) backbone '
        'for mmpretrain, mmdetection and mmsegmentation',
        long_description=open('README.md', encoding='utf-8').read(),
        long_description_content_type='text/markdown',
        keywords='computer vision, backbone, linear attention, openmmlab',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'demo')),
        include_package_data=True,
        package_data={'l2vit_mm': mim_package_data()},
        python_requires='>=3.8',
        license='Apache License 2.0',
        install_requires=[
            'torch>=2.0',
            'mmengine>=0.8.0,<1.0.0',
            'mmcv>=2.0.0,<2.2.0',
            'numpy',
        ],
        extras_require={
            'cls': ['mmpretrain>=1.0.0,<1.3.0'],
            'det': ['mmdet>=3.0.0,<3.4.0'],
            'seg': ['mmsegmentation>=1.0.0,<1.3.0', 'ftfy', 'regex'],
            # demo/run_demo.py and demo/dense_demo.py: the digits, plots,
            # scene masks.
            'demo': ['scikit-learn', 'matplotlib', 'pycocotools'],
            'all': [
                'mmpretrain>=1.0.0,<1.3.0', 'mmdet>=3.0.0,<3.4.0',
                'mmsegmentation>=1.0.0,<1.3.0', 'ftfy', 'regex'
            ],
        },
        zip_safe=False)
