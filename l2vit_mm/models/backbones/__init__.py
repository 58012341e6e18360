# Copyright (c) l2vit_mm contributors. All rights reserved.
from ...registry import register_model
from .l2vit import L2ViT

register_model(L2ViT)

__all__ = ['L2ViT']
