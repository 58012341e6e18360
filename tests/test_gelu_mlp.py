# Copyright (c) l2vit_mm contributors. All rights reserved.
import pytest
import torch

from l2vit_mm.models.layers import Mlp, blocks, chunked_inference
from l2vit_mm.models.layers.gelu_mlp import GeluMlpFunction, gelu_mlp


def plain(mlp, x):
    return mlp.fc2(mlp.act(mlp.fc1(x)))


def assert_close_in_bf16(out, grads, ref_out, ref_grads):
    """Outputs of a bf16 autocast run close to the reference's, float32
    gradients within 3% of the reference's largest."""
    assert out.dtype == ref_out.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref_out, atol=2e-2, rtol=2e-2)
    for a, b in zip(grads, ref_grads):
        assert a.dtype == b.dtype == torch.float32
        assert (a - b).abs().max() <= 3e-2 * b.abs().max()


def grads_of(fn, mlp, x, grad):
    mlp.zero_grad()
    x = x.detach().requires_grad_()
    out = fn(mlp, x)
    out.backward(grad)
    return out.detach(), [x.grad] + [p.grad.clone() for p in mlp.parameters()]


@pytest.mark.parametrize('approximate', ['none', 'tanh'])
def test_same_output_and_gradients_in_chunks(monkeypatch, approximate):
    # 40 hidden elements a chunk: 1 token of 32 hidden channels per chunk.
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 40)
    mlp = Mlp(8, 32)
    mlp.act.approximate = approximate
    x, grad = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
    out, grads = grads_of(
        lambda m, t: gelu_mlp(t, m.fc1, m.fc2, approximate), mlp, x, grad)
    ref_out, ref_grads = grads_of(plain, mlp, x, grad)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_matches_autocast_linear_layers():
    mlp = Mlp(16, 64)
    x, grad = torch.randn(300, 16), torch.randn(300, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, grads = grads_of(
            lambda m, t: gelu_mlp(t, m.fc1, m.fc2), mlp, x, grad)
        ref_out, ref_grads = grads_of(plain, mlp, x, grad)
    assert_close_in_bf16(out, grads, ref_out, ref_grads)


def saved_bytes(fn):
    """Bytes of non-parameter tensors autograd keeps for backward."""
    total = []

    def pack(t):
        if not isinstance(t, torch.nn.Parameter):
            total.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(total)


def test_keeps_one_hidden_tensor_instead_of_two():
    mlp = Mlp(8, 32)
    x = torch.randn(100, 8, requires_grad=True)
    hidden = 100 * 32 * 4
    ours = saved_bytes(lambda: gelu_mlp(x, mlp.fc1, mlp.fc2))
    theirs = saved_bytes(lambda: plain(mlp, x))
    assert ours == 100 * 8 * 4 + hidden
    assert theirs >= ours + hidden


def test_mlp_takes_the_function_only_when_training(monkeypatch):
    calls = []
    monkeypatch.setattr(blocks, 'gelu_mlp',
                        lambda *args: calls.append(args) or plain(mlp, x))
    mlp = Mlp(8, 32)
    x = torch.randn(4, 8)
    mlp(x)
    assert len(calls) == 1
    with torch.no_grad():
        mlp(x)
    mlp.requires_grad_(False)
    mlp(x)
    assert len(calls) == 1


@pytest.mark.parametrize('device', ['cpu', 'meta'])
def test_chunks_on_the_cpu_only(monkeypatch, device):
    """Training takes the function on any device ('meta' stands for a
    GPU here), in cache-sized chunks on the CPU, in one chunk elsewhere."""
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 64 * 32)
    steps = []
    apply = GeluMlpFunction.apply
    monkeypatch.setattr(GeluMlpFunction, 'apply',
                        lambda *args: steps.append(args[-1]) or apply(*args))
    mlp = Mlp(8, 32).to(device)
    x = torch.ones(3, 50, 8, device=device, requires_grad=True)
    mlp(x).sum().backward()
    assert steps == [64 if device == 'cpu' else 150]
    assert x.grad.shape == x.shape and mlp.fc1.weight.grad.device == x.device


def test_no_input_gradient_when_the_input_needs_none(monkeypatch):
    calls = []
    mm = torch.mm
    monkeypatch.setattr(torch, 'mm',
                        lambda *a, **kw: calls.append(kw) or mm(*a, **kw))
    mlp = Mlp(8, 32)
    out = gelu_mlp(torch.randn(10, 8), mlp.fc1, mlp.fc2)
    out.sum().backward()
    assert mlp.fc1.weight.grad is not None and mlp.fc2.bias.grad is not None
    # The input gradient is the only product written with ``out=``.
    assert not any('out' in kw for kw in calls)
    x = torch.randn(10, 8, requires_grad=True)
    gelu_mlp(x, mlp.fc1, mlp.fc2).sum().backward()
    assert any('out' in kw for kw in calls) and x.grad.abs().sum() > 0


def test_backward_sums_weight_gradients_in_place(monkeypatch):
    """Over many chunks, the weight gradients are summed into the first
    chunk's product (``addmm_``): no zero-filled buffers, no temporary
    product per chunk."""
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 64)
    mlp = Mlp(8, 32)
    out = gelu_mlp(torch.randn(10, 8, requires_grad=True), mlp.fc1, mlp.fc2)
    grad = torch.randn_like(out)
    with torch.profiler.profile() as prof:
        out.backward(grad)
    ops = [event.name for event in prof.events()]
    assert ops.count('aten::addmm_') == 2 * (10 // 2 - 1)
    assert 'aten::zeros_like' not in ops and 'aten::zeros' not in ops


@pytest.mark.parametrize('frozen', ['fc1', 'fc2', 'both'])
def test_no_gradient_of_frozen_weights_is_computed(monkeypatch, frozen):
    """Frozen layers (fine-tuning part of a block): backward computes only
    the gradients that autograd asks for, and those match."""
    from l2vit_mm.models.layers import gelu_mlp as module
    products = []
    add_product = module._add_product
    monkeypatch.setattr(
        module, '_add_product',
        lambda total, a, b, dtype: products.append(b.shape) or add_product(
            total, a, b, dtype))
    mlp = Mlp(8, 32)
    layers = [mlp.fc1, mlp.fc2] if frozen == 'both' else [getattr(mlp, frozen)]
    for layer in layers:
        layer.requires_grad_(False)
    x = torch.randn(10, 8, requires_grad=True)
    grad = torch.randn(10, 8)
    trainable = [x] + [p for p in mlp.parameters() if p.requires_grad]
    out = gelu_mlp(x, mlp.fc1, mlp.fc2)
    grads = torch.autograd.grad(out, trainable, grad)
    expected = {'fc1': [(10, 32)], 'fc2': [(10, 8)], 'both': []}[frozen]
    assert products == expected  # the trainable layer's weight only
    ref_out = plain(mlp, x)
    ref_grads = torch.autograd.grad(ref_out, trainable, grad)
    torch.testing.assert_close(out, ref_out)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)
