# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The convolutional stem and the stride-2 downsampling layers of L2ViT."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from .execution_mode import hooks_within, trains_eagerly_on_cpu
from .padding import pad_to_multiple


class ConvPatchEmbed(BaseModule):
    """Two stride-2 3x3 convs with BatchNorm, ReLU between them.

    Args:
        in_channels (int): Number of image channels.
        embed_dims (int): Number of output channels.
    """

    def __init__(self, in_channels, embed_dims):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, embed_dims // 2, 3, 2, 1),
            nn.BatchNorm2d(embed_dims // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(embed_dims // 2, embed_dims, 3, 2, 1),
            nn.BatchNorm2d(embed_dims),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed images (B, C, H, W) into a (B, D, H/4, W/4) map.

        The layers run on channels-last maps (on the CPU the convolutions
        and their backward are faster so, and the output's channels-last
        view needs no copy). With both BatchNorms in eval mode (inference,
        or ``norm_eval``) they are folded into the convolutions: the same
        result (gradients included) without two passes over the largest
        maps of the network. Traced runs (FLOP counting, ONNX export) keep
        the layers and the layout as they are; hooks on the layers
        (:func:`.execution_mode.hooks_within`) turn the folding off.
        """
        conv1, bn1, act, conv2, bn2 = self.proj
        if torch.jit.is_tracing():
            return self.proj(x)
        x = x.contiguous(memory_format=torch.channels_last)
        if bn1.training or bn2.training or hooks_within(self):
            return self.proj(x)
        x = act(fold_batch_norm(conv1, bn1, x))
        return fold_batch_norm(conv2, bn2, x)


def fold_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d,
                    x: torch.Tensor) -> torch.Tensor:
    """Apply ``bn(conv(x))`` as one convolution, for ``bn`` in eval mode.

    Args:
        conv (nn.Conv2d): A convolution with bias.
        bn (nn.BatchNorm2d): An affine BatchNorm with running statistics.
        x (Tensor): The input of ``conv``.

    Returns:
        Tensor: ``bn(conv(x))``, differentiable in the parameters of both.
    """
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    bias = (conv.bias - bn.running_mean) * scale + bn.bias
    return F.conv2d(x, weight, bias, conv.stride, conv.padding,
                    conv.dilation, conv.groups)


class ConvStem(BaseModule):
    """Stride-4 stem: pad to a multiple of 4, conv stem, LayerNorm.

    Args:
        in_channels (int): Number of image channels.
        embed_dims (int): Number of output channels.
    """

    def __init__(self, in_channels, embed_dims):
        super().__init__()
        self.proj = ConvPatchEmbed(in_channels, embed_dims)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed an image.

        Args:
            x (Tensor): Images of shape (B, C, H, W).

        Returns:
            Tensor: A channels-last map (B, ceil(H/4), ceil(W/4), D).
        """
        x = self.proj(pad_to_multiple(x, 4))
        return self.norm(x.permute(0, 2, 3, 1))


class Downsample(BaseModule):
    """LayerNorm, then a 2x2 stride-2 conv (odd sizes padded first).

    The conv's weight is stored channels-last, the layout of the weight
    gradient computed from channels-last maps (no copy into another layout
    in backward, no DistributedDataParallel layout warning). Training on
    the CPU runs the conv as what it is, one matmul of the 2x2 patches with
    the weight (:func:`patch_linear`): the same result, forward and
    backward of L2ViT-T's three at 8x224 in 39.7 ms instead of 44.2 ms
    (51.7 ms with the weight in the default layout) on a 2-core Xeon;
    hooks on the layers (:func:`.execution_mode.hooks_within`) see the
    convolution called instead.

    Args:
        in_channels (int): Number of input channels.
        out_channels (int): Number of output channels.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.norm = nn.LayerNorm(in_channels)
        self.proj = nn.Conv2d(in_channels, out_channels, 2, 2)
        self.proj.weight = nn.Parameter(self.proj.weight.detach().contiguous(
            memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the resolution of a channels-last map.

        Args:
            x (Tensor): A map of shape (B, H, W, C).

        Returns:
            Tensor: A map of shape (B, ceil(H/2), ceil(W/2), out_channels).
        """
        x = self.norm(x)
        if trains_eagerly_on_cpu(x, self.proj.weight) and not hooks_within(
                self):
            return patch_linear(
                pad_to_multiple(x, 2, channels_last=True), self.proj)
        x = self.proj(pad_to_multiple(x.permute(0, 3, 1, 2), 2))
        return x.permute(0, 2, 3, 1)


def patch_linear(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Apply a convolution whose stride is its kernel size as one matmul.

    Args:
        x (Tensor): A channels-last map (B, H, W, C); H and W are
            multiples of the kernel size.
        conv (nn.Conv2d): An ungrouped, unpadded convolution with
            ``stride == kernel_size``.

    Returns:
        Tensor: ``conv`` applied to the map, channels-last
        (B, H / k, W / k, out_channels).
    """
    B, H, W, C = x.shape
    k = conv.kernel_size[0]
    patches = x.view(B, H // k, k, W // k, k, C).transpose(2, 3)
    weight = conv.weight.permute(0, 2, 3, 1).reshape(-1, k * k * C)
    out = F.linear(patches.reshape(-1, k * k * C), weight, conv.bias)
    return out.view(B, H // k, W // k, conv.out_channels)
