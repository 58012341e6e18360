# Copyright (c) l2vit_mm contributors. All rights reserved.
__version__ = '0.1.0'
