# Copyright (c) l2vit_mm contributors. All rights reserved.
from .attention import (LinearAttention, WindowAttention, window_partition,
                        window_reverse)
from .blocks import (ChannelsLastDepthwiseConv, ConvPosEnc, LGABlock,
                     LocalConcentration, LWABlock, Mlp)
from .downsample import ConvPatchEmbed, ConvStem, Downsample
from .linear_attention import LinearAttentionFunction, linear_attention_core
from .padding import pad_to_multiple
from .residual import add_residual

__all__ = [
    'LinearAttention', 'WindowAttention', 'LinearAttentionFunction',
    'linear_attention_core',
    'window_partition', 'window_reverse',
    'ChannelsLastDepthwiseConv', 'ConvPosEnc',
    'LGABlock', 'LocalConcentration', 'LWABlock', 'Mlp', 'add_residual',
    'ConvPatchEmbed', 'ConvStem', 'Downsample', 'pad_to_multiple'
]
