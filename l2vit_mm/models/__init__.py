# Copyright (c) l2vit_mm contributors. All rights reserved.
from .backbones import L2ViT

__all__ = ['L2ViT']
