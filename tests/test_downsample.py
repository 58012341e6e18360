# Copyright (c) l2vit_mm contributors. All rights reserved.
import pytest
import torch

from l2vit_mm.models.layers import downsample
from l2vit_mm.models.layers.downsample import Downsample
from tests.test_gelu_mlp import assert_close_in_bf16, grads_of


def run(layer, x):
    return layer(x)


def as_convolution(monkeypatch):
    monkeypatch.setattr(downsample, 'trains_eagerly_on_cpu',
                        lambda *args: False)


@pytest.mark.parametrize('size', [(8, 12), (7, 9)])
def test_patch_matmul_matches_the_convolution(monkeypatch, size):
    """CPU training runs the 2x2 stride-2 conv as a matmul of patches
    (odd sizes padded first): outputs and gradients of the conv."""
    layer = Downsample(6, 10)
    x = torch.randn(3, *size, 6)
    grad = torch.randn(3, -(-size[0] // 2), -(-size[1] // 2), 10)
    calls = []
    monkeypatch.setattr(downsample, 'patch_linear',
                        lambda *a, p=downsample.patch_linear:
                        calls.append(1) or p(*a))
    out, grads = grads_of(run, layer, x, grad)
    assert calls
    as_convolution(monkeypatch)
    ref_out, ref_grads = grads_of(run, layer, x, grad)
    assert len(calls) == 1
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_matches_the_autocast_convolution(monkeypatch):
    layer = Downsample(8, 16)
    x, grad = torch.randn(2, 10, 6, 8), torch.randn(2, 5, 3, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, grads = grads_of(run, layer, x, grad)
        as_convolution(monkeypatch)
        ref_out, ref_grads = grads_of(run, layer, x, grad)
    assert_close_in_bf16(out, grads, ref_out, ref_grads)


def test_inference_runs_the_convolution(monkeypatch):
    monkeypatch.setattr(downsample, 'patch_linear',
                        lambda *a: pytest.fail('patch matmul in inference'))
    layer = Downsample(4, 8)
    with torch.no_grad():
        assert layer(torch.randn(1, 6, 6, 4)).shape == (1, 3, 3, 8)


@pytest.mark.parametrize('train_path', [True, False])
def test_weight_gradient_has_the_weights_strides(monkeypatch, train_path):
    """A gradient in another layout than its parameter is copied by
    autograd (and makes DistributedDataParallel warn) every step."""
    layer = Downsample(8, 16)
    if not train_path:
        as_convolution(monkeypatch)
    layer(torch.randn(2, 6, 6, 8, requires_grad=True)).sum().backward()
    weight = layer.proj.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert weight.grad.stride() == weight.stride()
