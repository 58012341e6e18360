# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Small real data sets written in the layouts of ImageNet, COCO and ADE20K,
so that demos and tests run the real OpenMMLab data paths offline."""
from .digits import make_digits_imagenet
from .scenes import (DIGIT_CLASSES, SEG_CLASSES, SEG_PALETTE,
                     make_ade_scenes, make_coco_scenes, render_scenes)

__all__ = [
    'make_digits_imagenet', 'DIGIT_CLASSES', 'SEG_CLASSES', 'SEG_PALETTE',
    'make_ade_scenes', 'make_coco_scenes', 'render_scenes'
]
