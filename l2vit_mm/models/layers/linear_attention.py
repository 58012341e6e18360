# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The arithmetic of L2ViT's enhanced linear attention.

Keys and values are summed over all tokens into a small state
(:func:`linear_attention_state`) that queries read
(:func:`linear_attention_read`). The sums run in float32 whatever the
autocast dtype: over tens of thousands of tokens they overflow float16.
In training, :class:`LinearAttentionFunction` keeps for backward, besides
the queries and keys that its caller's ReLUs keep anyway, only the values
(in their own dtype), the temperature, the small key-value sums and state
and the denominators; autograd would keep float32 copies of the queries,
keys and values and the float32 numerators.
"""
import torch

from .execution_mode import trains_eagerly


def _state_dtype(x: torch.Tensor) -> torch.dtype:
    """float32, or float64 for a float64 model."""
    return torch.promote_types(x.dtype, torch.float32)


def _key_value_sums(k: torch.Tensor, v: torch.Tensor,
                    temperature: torch.Tensor):
    """``k^T v`` and the state of :func:`linear_attention_state`.

    Returns:
        tuple[Tensor]: ``k^T v`` (B, heads, d, d) and the state
        (B, heads, d, d + 1), both in the state dtype.
    """
    dtype = _state_dtype(k)
    with torch.autocast(device_type=k.device.type, enabled=False):
        k, v = k.to(dtype), v.to(dtype)
        kv = k.transpose(-2, -1) @ v
        state = torch.cat([kv * temperature.to(dtype),
                           k.sum(dim=-2).unsqueeze(-1)],
                          dim=-1)
    return kv, state


def linear_attention_state(k: torch.Tensor, v: torch.Tensor,
                           temperature: torch.Tensor) -> torch.Tensor:
    """What enhanced linear attention keeps of all keys and values.

    The d x d matrix ``k^T v * temperature`` with ``sum_n k_n`` as an extra
    column, summed over the tokens in float32 whatever the autocast dtype,
    or in float64 for a float64 model. It is linear in the tokens: the
    states of chunks of a sequence add up to the state of the sequence.

    Args:
        k (Tensor): Keys (B, heads, N, d), non-negative.
        v (Tensor): Values (B, heads, N, d).
        temperature (Tensor): Per-head scale of shape (heads, 1, 1).

    Returns:
        Tensor: The state (B, heads, d, d + 1) in float32 (float64 for
        float64 keys).
    """
    return _key_value_sums(k, v, temperature)[1]


def _read(q: torch.Tensor, state: torch.Tensor, min_denominator: float):
    """The attended values in the state's dtype and the unclamped
    denominators (B, heads, N, 1), a view of one ``q @ state``."""
    with torch.autocast(device_type=q.device.type, enabled=False):
        out = q.to(state.dtype) @ state
    denominators = out[..., -1:]
    return out[..., :-1] / denominators.clamp(min=min_denominator), \
        denominators


def linear_attention_read(q: torch.Tensor, state: torch.Tensor,
                          min_denominator: float) -> torch.Tensor:
    """Attend with queries to a state of :func:`linear_attention_state`.

    ``out = (q (k^T v * temperature)) / max(q . sum_n k_n,
    min_denominator)``: one matmul with the state gives numerators and
    denominators, in the state's dtype.

    Args:
        q (Tensor): Queries (B, heads, N, d), non-negative.
        state (Tensor): The keys' and values' state (B, heads, d, d + 1).
        min_denominator (float): Lower clamp of the denominator.

    Returns:
        Tensor: The attended values (B, heads, N, d) in the dtype of ``q``.
    """
    return _read(q, state, min_denominator)[0].to(q.dtype)


class LinearAttentionFunction(torch.autograd.Function):
    """:func:`linear_attention_core` with a backward that keeps little.

    Forward computes what :func:`linear_attention_state` and
    :func:`linear_attention_read` compute. For backward it keeps the
    queries and keys that its caller's ReLUs keep anyway, the values in
    their own dtype, the temperature, the tiny key-value sums and state and
    the float32 denominators; backward
    recomputes the numerators with one small matmul. Its sums over tokens
    run in the state dtype, as in forward.
    """

    @staticmethod
    def forward(ctx, q, k, v, temperature, min_denominator):
        v = v.contiguous()
        kv, state = _key_value_sums(k, v, temperature)
        out, denominators = _read(q, state, min_denominator)
        # A copy: a view would keep all of ``q @ state`` for backward.
        denominators = denominators.contiguous()
        ctx.save_for_backward(q, k, v, temperature, kv, state, denominators)
        ctx.min_denominator = min_denominator
        return out.to(q.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, temperature, kv, state, denominators = ctx.saved_tensors
        dtype = state.dtype
        with torch.autocast(device_type=q.device.type, enabled=False):
            q32, k32, v32 = q.to(dtype), k.to(dtype), v.to(dtype)
            grad_out = grad_out.to(dtype)
            clamped = denominators.clamp(min=ctx.min_denominator)
            numerators = q32 @ state[..., :-1]
            # d out / d denominator, zero where the clamp held it.
            grad_den = (grad_out * numerators).sum(-1, keepdim=True)
            grad_den = grad_den.div_(clamped.square()).neg_().mul_(
                denominators >= ctx.min_denominator)
            grad_read = torch.cat([grad_out / clamped, grad_den], dim=-1)
            grad_q = grad_read @ state.transpose(-2, -1)
            grad_state = q32.transpose(-2, -1) @ grad_read
            grad_scaled_kv, grad_k_sum = grad_state[..., :-1], \
                grad_state[..., -1:]
            grad_kv = grad_scaled_kv * temperature.to(dtype)
            grad_k = (v32 @ grad_kv.transpose(-2, -1)).add_(
                grad_k_sum.transpose(-2, -1))
            grad_v = k32 @ grad_kv
            grad_temperature = (grad_scaled_kv * kv).sum(
                dim=(0, 2, 3)).view_as(temperature)
        return (grad_q.to(q.dtype), grad_k.to(k.dtype), grad_v.to(v.dtype),
                grad_temperature.to(temperature.dtype), None)


def linear_attention_core(q: torch.Tensor,
                          k: torch.Tensor,
                          v: torch.Tensor,
                          temperature: torch.Tensor,
                          min_denominator: float,
                          recompute_in_backward: bool = True) -> torch.Tensor:
    """The enhanced linear attention of L2ViT for non-negative ``q``, ``k``.

    In eager training with ``recompute_in_backward`` through
    :class:`LinearAttentionFunction` (the same result and gradients, less
    memory kept for backward).

    Args:
        q (Tensor): Queries (B, heads, N, d), non-negative.
        k (Tensor): Keys (B, heads, N, d), non-negative.
        v (Tensor): Values (B, heads, N, d).
        temperature (Tensor): Per-head scale of shape (heads, 1, 1).
        min_denominator (float): Lower clamp of the denominator.
        recompute_in_backward (bool): Whether eager training goes through
            :class:`LinearAttentionFunction`; False: autograd's own
            backward. Defaults to True.

    Returns:
        Tensor: The attended values (B, heads, N, d) in the dtype of ``q``.
    """
    if recompute_in_backward and trains_eagerly(q, k, v, temperature):
        return LinearAttentionFunction.apply(q, k, v, temperature,
                                             min_denominator)
    state = linear_attention_state(k, v, temperature)
    return linear_attention_read(q, state, min_denominator)
