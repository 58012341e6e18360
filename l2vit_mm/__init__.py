# Copyright (c) l2vit_mm contributors. All rights reserved.
"""L2ViT for OpenMMLab: ``import l2vit_mm`` registers the backbone in the
``MODELS`` registries of mmpretrain, mmdet and mmsegmentation (those that are
installed)."""
from .models import L2ViT
from .version import __version__

__all__ = ['L2ViT', '__version__']
