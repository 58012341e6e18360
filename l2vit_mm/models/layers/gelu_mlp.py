# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Linear -> GELU -> Linear for training, with GELU recomputed in backward.

Autograd keeps both the first layer's output and the GELU's output of every
MLP for backward: two tensors four times the size of the block's map, the
largest activations of the network. :class:`GeluMlpFunction` keeps only the
first (GELU is cheap to recompute), on any device. On the CPU it runs
forward and backward over chunks of tokens, so that the other wide
intermediates (GELU output, its gradient) stay in cache instead of being
written to freshly allocated memory.
"""
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from .chunked_inference import tokens_per_chunk
from .execution_mode import autocast_dtype


class GeluMlpFunction(torch.autograd.Function):
    """``linear(gelu(linear(x, w1, b1)), w2, b2)`` over (N, C) tokens.

    Under autocast the matmuls run in the autocast dtype, as ``F.linear``
    would, and the weight gradients come back in the weights' dtype.
    """

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, approximate, step):
        hidden = torch.empty(
            x.shape[0], w1.shape[0], dtype=x.dtype, device=x.device)
        out = torch.empty(
            x.shape[0], w2.shape[0], dtype=x.dtype, device=x.device)
        w1c, b1c, w2c, b2c = (t.to(x.dtype) for t in (w1, b1, w2, b2))
        for s in range(0, x.shape[0], step):
            pre = torch.addmm(
                b1c, x[s:s + step], w1c.t(), out=hidden[s:s + step])
            torch.addmm(
                b2c, F.gelu(pre, approximate=approximate), w2c.t(),
                out=out[s:s + step])
        ctx.save_for_backward(x, w1, w2, hidden)
        ctx.approximate, ctx.step = approximate, step
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, w1, w2, hidden = ctx.saved_tensors
        approximate, step = ctx.approximate, ctx.step
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad[:5]
        grad_out = grad_out.to(x.dtype).contiguous()
        w1c, w2c = w1.to(x.dtype), w2.to(x.dtype)
        grad_x = torch.empty_like(x) if need_x else None
        grad_w1 = grad_w2 = grad_b1 = None
        # At least once: no tokens give zero weight gradients, as autograd.
        for s in range(0, max(1, x.shape[0]), step):
            pre, dout = hidden[s:s + step], grad_out[s:s + step]
            if need_w2:
                grad_w2 = _add_product(grad_w2, dout.t(),
                                       F.gelu(pre, approximate=approximate),
                                       w2.dtype)
            if not (need_x or need_w1 or need_b1):
                continue
            grad_pre = torch.ops.aten.gelu_backward(
                dout @ w2c, pre, approximate=approximate)
            if need_w1:
                grad_w1 = _add_product(grad_w1, grad_pre.t(), x[s:s + step],
                                       w1.dtype)
            if need_b1:
                bias_part = grad_pre.sum(0, dtype=w1.dtype)
                grad_b1 = bias_part if grad_b1 is None else grad_b1.add_(
                    bias_part)
            if need_x:
                torch.mm(grad_pre, w1c, out=grad_x[s:s + step])
        grad_b2 = grad_out.sum(0, dtype=w2.dtype) if need_b2 else None
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2, None, None


def _add_product(total, a, b, dtype):
    """Return ``total + a @ b`` in ``dtype``, summed into ``total`` in place.

    Args:
        total (Tensor | None): The sum so far (None: nothing yet).
        a (Tensor): Left factor.
        b (Tensor): Right factor.
        dtype (torch.dtype): The dtype of the sum (a weight's dtype).

    Returns:
        Tensor: ``a @ b`` itself for the first product (no zero-filled
        buffer to add it to), then ``total`` with the product added: in
        one ``addmm_`` when the factors are in ``dtype`` (no temporary).
    """
    if total is None:
        return (a @ b).to(dtype)
    if a.dtype == dtype:
        return total.addmm_(a, b)
    return total.add_((a @ b).to(dtype))


def gelu_mlp(x: torch.Tensor, fc1: torch.nn.Linear, fc2: torch.nn.Linear,
             approximate: str = 'none') -> torch.Tensor:
    """``fc2(gelu(fc1(x)))`` through :class:`GeluMlpFunction`.

    Args:
        x (Tensor): Tokens (..., C).
        fc1 (nn.Linear): The first layer (C -> hidden).
        fc2 (nn.Linear): The second layer (hidden -> C).
        approximate (str): GELU's ``approximate`` argument.
            Defaults to ``'none'``.

    Returns:
        Tensor: The output (..., C), in the autocast dtype under autocast.
        Chunked on the CPU only: elsewhere there is no cache to gain and
        all tokens form one chunk.
    """
    device = x.device.type
    dtype = autocast_dtype(device)
    tokens = x.reshape(-1, x.shape[-1]).to(dtype or x.dtype)
    step = tokens_per_chunk(fc1.out_features) if device == 'cpu' else max(
        1, tokens.shape[0])
    with torch.autocast(device, enabled=False) if dtype else nullcontext():
        out = GeluMlpFunction.apply(tokens, fc1.weight, fc1.bias, fc2.weight,
                                    fc2.bias, approximate, step)
    return out.view(*x.shape[:-1], out.shape[-1])
