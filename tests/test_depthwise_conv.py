# Copyright (c) l2vit_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn

from l2vit_mm.models.layers import blocks
from l2vit_mm.models.layers.blocks import (ChannelsLastDepthwiseConv,
                                           LocalConcentration)
from l2vit_mm.models.layers.depthwise_conv import depthwise_conv2d
from tests.test_gelu_mlp import assert_close_in_bf16, grads_of


def ours(conv, x):
    return depthwise_conv2d(x, conv)


@pytest.mark.parametrize('kernel_size', [3, 7])
@pytest.mark.parametrize('channels_last', [True, False])
def test_same_output_and_gradients_as_conv2d(kernel_size, channels_last):
    conv = nn.Conv2d(
        6, 6, kernel_size, padding=kernel_size // 2, groups=6)
    x, grad = torch.randn(3, 6, 9, 13), torch.randn(3, 6, 9, 13)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out, grads = grads_of(ours, conv, x, grad)
    ref_out, ref_grads = grads_of(lambda c, t: c(t), conv, x, grad)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


def test_bf16_autocast_matches_autocast_conv2d():
    conv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
    x, grad = torch.randn(2, 8, 12, 10), torch.randn(2, 8, 12, 10)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, grads = grads_of(ours, conv, x, grad)
        ref_out, ref_grads = grads_of(lambda c, t: c(t), conv, x, grad)
    assert_close_in_bf16(out, grads, ref_out, ref_grads)


def test_no_input_gradient_when_the_input_needs_none(monkeypatch):
    calls = []
    backward = torch.ops.aten.convolution_backward
    monkeypatch.setattr(torch.ops.aten, 'convolution_backward',
                        lambda *args: calls.append(args) or backward(*args))
    conv = nn.Conv2d(4, 4, 7, padding=3, groups=4)
    depthwise_conv2d(torch.randn(2, 4, 8, 8), conv).sum().backward()
    assert conv.weight.grad.abs().sum() > 0
    assert conv.bias.grad.abs().sum() > 0
    assert calls == []
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    depthwise_conv2d(x, conv).sum().backward()
    assert len(calls) == 1 and x.grad.abs().sum() > 0


def test_local_concentration_takes_it_only_when_training(monkeypatch):
    calls = []
    monkeypatch.setattr(
        blocks, 'depthwise_conv2d',
        lambda x, conv: calls.append(conv) or nn.Conv2d.forward(conv, x))
    lcm = LocalConcentration(8)
    x = torch.randn(2, 5, 5, 8)
    lcm(x)
    assert calls == [lcm.conv1, lcm.conv2]
    with torch.no_grad():
        lcm(x)
    lcm.requires_grad_(False)
    lcm(x)
    LocalConcentration(8, kernel_size=3)(x)
    assert len(calls) == 2


@pytest.mark.parametrize('kernel_size', [3, 7])
def test_weight_gradients_have_the_weights_strides(kernel_size):
    """DistributedDataParallel warns and copies every step when a
    gradient's strides differ from its parameter's."""
    conv = ChannelsLastDepthwiseConv(8, kernel_size)
    conv(torch.randn(2, 9, 9, 8, requires_grad=True)).sum().backward()
    assert conv.weight.grad.stride() == conv.weight.stride()
    assert conv.bias.grad.stride() == conv.bias.stride()


def test_weight_gradient_reads_the_images_in_place():
    """oneDNN gets each image as a channels-last slice of the map: an image
    whose batch stride reads as NCHW (``x[b].unsqueeze(0)``) is copied
    first: the weight gradient took 1.1x-1.6x as long (8x224 to 800x1216
    maps on a 2-core Xeon)."""
    conv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
    x = torch.randn(3, 8, 10, 12).contiguous(memory_format=torch.channels_last)
    out = depthwise_conv2d(x, conv)
    with torch.profiler.profile(record_shapes=True) as prof:
        out.sum().backward()
    copied = [e.input_shapes[0] for e in prof.events()
              if e.name in ('aten::clone', 'aten::copy_')]
    assert [1, 8, 10, 12] not in copied
    assert conv.weight.grad.abs().sum() > 0


def conv_on_nchw(conv, x):
    """Run ``conv`` on ``x``; returns whether it ran on an NCHW copy (its
    result, seen as (B, C, H, W), is then NCHW-contiguous) and the result.
    """
    out = conv(x)
    return out.permute(0, 3, 1, 2).is_contiguous(), out


def test_nchw_path_in_float32_training_on_listed_devices(monkeypatch):
    """On the devices of ``NCHW_TRAINING_DEVICES`` (CUDA; the CPU here
    stands in) float32 training runs kernels of 5x5 and more on NCHW
    copies: the same result and gradients, weight gradients in the
    parameter's strides."""
    monkeypatch.setattr(blocks, 'NCHW_TRAINING_DEVICES', ('cpu', ))
    conv = ChannelsLastDepthwiseConv(8, 7)
    x = torch.randn(2, 9, 11, 8, requires_grad=True)
    grad = torch.randn(2, 9, 11, 8)
    nchw, out = conv_on_nchw(conv, x)
    assert nchw
    grads = torch.autograd.grad(
        out, (x, conv.weight, conv.bias), grad, retain_graph=True)
    ref = nn.Conv2d.forward(conv, x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    ref_grads = torch.autograd.grad(ref, (x, conv.weight, conv.bias), grad)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)
    out.backward(grad)
    assert conv.weight.grad.stride() == conv.weight.stride()


def test_nchw_path_only_in_float32_training_of_large_kernels(monkeypatch):
    """Not for 3x3 kernels, in inference, under autocast, in float64 or
    for a weight in another memory order than the module's own."""
    monkeypatch.setattr(blocks, 'NCHW_TRAINING_DEVICES', ('cpu', ))
    x = torch.randn(2, 9, 11, 8)
    conv7, conv3 = ChannelsLastDepthwiseConv(8, 7), \
        ChannelsLastDepthwiseConv(8, 3)
    assert conv_on_nchw(conv7, x)[0]
    assert not conv_on_nchw(conv3, x)[0]
    with torch.no_grad():
        assert not conv_on_nchw(conv7, x)[0]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not conv_on_nchw(conv7, x)[0]
    assert not conv_on_nchw(ChannelsLastDepthwiseConv(8, 7).double(),
                            x.double())[0]
    conv7.weight = nn.Parameter(conv7.weight.detach().transpose(2, 3))
    assert not conv_on_nchw(conv7, x)[0]


def test_no_nchw_path_on_the_cpu_by_default():
    conv = ChannelsLastDepthwiseConv(8, 7)
    assert not conv_on_nchw(conv, torch.randn(2, 9, 11, 8))[0]
