# Copyright (c) l2vit_mm contributors. All rights reserved.
import pytest
import torch

from l2vit_mm.models.layers import LinearAttention, linear_attention
from l2vit_mm.models.layers.linear_attention import (LinearAttentionFunction,
                                                     linear_attention_read,
                                                     linear_attention_state)
from tests.test_gelu_mlp import assert_close_in_bf16, grads_of


def plain_core(q, k, v, temperature, min_denominator):
    """The same attention with autograd's own backward."""
    state = linear_attention_state(k, v, temperature)
    return linear_attention_read(q, state, min_denominator)


def heads(n_tokens=40, dtype=torch.float64):
    torch.manual_seed(0)
    q, k = torch.rand(2, 2, 3, n_tokens, 4, dtype=dtype).unbind(0)
    v = torch.randn(2, 3, n_tokens, 4, dtype=dtype)
    temperature = torch.rand(3, 1, 1, dtype=dtype) + 0.5
    return [t.requires_grad_() for t in (q, k, v, temperature)]


def kept_storages(fn):
    """Non-parameter storages that autograd keeps for the backward of
    ``fn()``, as (bytes, dtype) once each."""
    kept = {}

    def pack(t):
        if not isinstance(t, torch.nn.Parameter):
            storage = t.untyped_storage()
            kept[storage.data_ptr()] = (storage.nbytes(), t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return list(kept.values())


def test_same_output_and_gradients_as_autograd():
    """With denominators both above and below the clamp."""
    q, k, v, temperature = heads()
    denominators = (q * k.sum(-2, keepdim=True)).sum(-1).flatten().sort()[0]
    middle = len(denominators) // 2
    clamp = denominators[middle - 1:middle + 1].mean().item()
    args = (q, k, v, temperature)
    assert torch.autograd.gradcheck(
        lambda *a: LinearAttentionFunction.apply(*a, clamp), args)
    out = LinearAttentionFunction.apply(*args, clamp)
    ref = plain_core(*args, clamp)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    for a, b in zip(
            torch.autograd.grad(out, args, grad),
            torch.autograd.grad(ref, args, grad)):
        torch.testing.assert_close(a, b)


def test_layer_in_bf16_autocast_matches_autograd(monkeypatch):
    attn = LinearAttention(32, 2, min_denominator=1.)
    x, grad = torch.randn(2, 6, 7, 32), torch.randn(2, 6, 7, 32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, grads = grads_of(lambda m, t: m(t), attn, x, grad)
        monkeypatch.setattr(linear_attention, 'trains_eagerly',
                            lambda *tensors: False)
        ref_out, ref_grads = grads_of(lambda m, t: m(t), attn, x, grad)
    assert_close_in_bf16(out, grads, ref_out, ref_grads)


def test_keeps_no_float32_copy_of_queries_keys_values(monkeypatch):
    """Under bf16 autocast only the denominators (B, heads, N, 1) and the
    small states stay in float32; autograd keeps float32 q, k, v."""
    B, H, W, C, heads_ = 2, 8, 8, 32, 2
    attn = LinearAttention(C, heads_)
    x = torch.randn(B, H, W, C, requires_grad=True)

    def float32_bytes():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            kept = kept_storages(lambda: attn(x))
        return sum(n for n, dtype in kept if dtype == torch.float32)

    tokens = B * H * W
    ours = float32_bytes()
    assert ours <= 4 * (tokens * heads_ + 2 * B * C * (C // heads_ + 1))
    monkeypatch.setattr(linear_attention, 'trains_eagerly',
                        lambda *tensors: False)
    assert float32_bytes() >= 3 * 4 * tokens * C


def test_keeps_less_in_float32(monkeypatch):
    """No q/k/v projection nor float32 numerators kept: at least 8 bytes
    a channel and token less than autograd keeps."""
    B, H, W, C = 2, 8, 8, 32
    attn = LinearAttention(C, 2)
    x = torch.randn(B, H, W, C, requires_grad=True)
    ours = sum(n for n, _ in kept_storages(lambda: attn(x)))
    monkeypatch.setattr(linear_attention, 'trains_eagerly',
                        lambda *tensors: False)
    theirs = sum(n for n, _ in kept_storages(lambda: attn(x)))
    assert ours <= theirs - 8 * B * H * W * C


def test_function_only_in_eager_training():
    q, k, v, temperature = heads(dtype=torch.float32)
    out = linear_attention.linear_attention_core(q, k, v, temperature, 1.)
    assert type(out.grad_fn).__name__ == 'LinearAttentionFunctionBackward'
    attn = LinearAttention(8, 2)
    traced = torch.jit.trace(attn, torch.randn(1, 4, 4, 8))
    assert 'PythonOp' not in str(traced.graph)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_sums_and_denominators_in_float32_under_autocast(dtype):
    """Under autocast the state (sums over all tokens) and the numerators
    and denominators read from it are float32 computations of the
    autocast-dtype inputs: in the autocast dtype they would round to
    about 1e-3 (and overflow float16 over tens of thousands of tokens)."""
    q, k, v, temperature = [t.detach() for t in heads(4096, torch.float32)]
    q, k, v = (t.to(dtype) for t in (q, k, v))
    with torch.autocast('cpu', dtype=dtype):
        state = linear_attention_state(k, v, temperature)
        out = linear_attention_read(q.float(), state, 1.)
    exact_state = linear_attention_state(k.double(), v.double(),
                                         temperature.double())
    exact_out = linear_attention_read(q.double(), exact_state, 1.)
    assert state.dtype == torch.float32 and out.dtype == torch.float32
    for result, exact in ((state, exact_state), (out, exact_out)):
        torch.testing.assert_close(
            result.double(), exact, rtol=1e-5,
            atol=1e-5 * exact.abs().max().item())
