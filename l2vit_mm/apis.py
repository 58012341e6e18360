# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Make the L2ViT classification configs known to mmpretrain's model hub."""
import os.path as osp

#: Where ``setup.py`` puts configs and metafiles for ``mim`` (symlinks in
#: editable installs, copies otherwise).
MIM_ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '.mim')
CLS_METAFILE = osp.join('configs', 'l2vit', 'metafile.yml')


def register_l2vit_models():
    """Register the L2ViT classifiers in ``mmpretrain.apis.ModelHub``.

    Afterwards ``mmpretrain.get_model('l2vit-tiny_8xb128-acc4_in1k',
    pretrained=CKPT)``, ``list_models('l2vit*')`` and the inferencers accept
    the model names of ``configs/l2vit/metafile.yml``. Calling it again does
    nothing.

    Returns:
        list[str]: The names of the L2ViT models in the hub.
    """
    from mmpretrain.apis import ModelHub, list_models
    metafile = osp.join(MIM_ROOT, CLS_METAFILE)
    if not osp.isfile(metafile):
        raise FileNotFoundError(
            f'{metafile} not found: install l2vit_mm with `pip install -e .` '
            'or `mim install -e .` so that its configs are packaged')
    if not list_models('l2vit*'):
        ModelHub.register_model_index(metafile, config_prefix=MIM_ROOT)
    return list_models('l2vit*')
