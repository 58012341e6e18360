# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Depthwise convolution with a faster weight gradient for CPU training.

oneDNN (PyTorch's CPU convolution backend) computes the weight gradient of
a depthwise convolution on channels-last maps with its generic grouped
kernel, which pads every one-channel group to a block of 16: for the 7x7
convolutions of L2ViT's local concentration module this takes ten times as
long as the forward pass. The weight gradient of a depthwise convolution is
itself a depthwise convolution of each image with its output gradient as the
kernel, which oneDNN's depthwise forward kernel computes fast;
:class:`DepthwiseConv2dFunction` computes it so, image by image.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .execution_mode import autocast_dtype


class DepthwiseConv2dFunction(torch.autograd.Function):
    """``conv2d(x, weight, bias, padding=padding, groups=C)``, stride 1.

    The input gradient comes from PyTorch's own convolution backward; the
    weight gradient is the sum over images of
    ``conv2d(x[b], grad_out[b] as kernel, padding=padding, groups=C)``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        padding, channels = ctx.padding, x.shape[1]
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1], [padding, padding],
                [1, 1], False, [0, 0], channels, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros_like(weight)
            # Images as slices, not ``x[b].unsqueeze(0)``: a slice keeps
            # the batch stride of a channels-last map, so oneDNN runs
            # channels-last instead of copying each image to NCHW.
            for b in range(len(x)):
                grad_weight += F.conv2d(
                    x[b:b + 1],
                    grad_out[b].unsqueeze(1),
                    padding=padding,
                    groups=channels).view_as(weight)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None


def depthwise_conv2d(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` for a depthwise, stride-1, 'same'-padded ``conv`` with
    bias, through :class:`DepthwiseConv2dFunction`.

    Args:
        x (Tensor): A (B, C, H, W) map on the CPU, best channels-last.
        conv (nn.Conv2d): The depthwise convolution (``groups == C``,
            stride 1, odd square kernel, padding ``kernel_size // 2``).

    Returns:
        Tensor: The output (B, C, H, W), in the autocast dtype under
        autocast. Meant for training on the CPU: the weight gradient is
        faster there for kernels of 5x5 and more (7x7: 2.5x on a 2-core
        Xeon); for 3x3 kernels PyTorch's own is faster.
    """
    dtype = autocast_dtype('cpu') or x.dtype
    x, weight, bias = (t.to(dtype) for t in (x, conv.weight, conv.bias))
    with torch.autocast(device_type='cpu', enabled=False):
        return DepthwiseConv2dFunction.apply(x, weight, bias,
                                             conv.padding[0])
