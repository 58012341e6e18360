# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The two token mixers of L2ViT: window softmax and linear attention."""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from .padding import pad_to_multiple
from .linear_attention import (linear_attention_core, linear_attention_read,
                               linear_attention_state)


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Split a channels-last map into non-overlapping windows.

    Args:
        x (Tensor): A map of shape (B, H, W, C); H and W are multiples of
            ``window_size``.
        window_size (int): The window side.

    Returns:
        Tensor: Windows of shape (B * num_windows, window_size**2, C).
    """
    B, H, W, C = x.shape
    x = x.view(B, H // window_size, window_size, W // window_size,
               window_size, C)
    return x.transpose(2, 3).reshape(-1, window_size * window_size, C)


def window_reverse(windows: torch.Tensor, window_size: int, H: int,
                   W: int) -> torch.Tensor:
    """Merge the windows of :func:`window_partition` back into a map.

    Args:
        windows (Tensor): Windows of shape (B * num_windows, ws*ws, C).
        window_size (int): The window side.
        H (int): Height of the (padded) map.
        W (int): Width of the (padded) map.

    Returns:
        Tensor: A map of shape (B, H, W, C).
    """
    C = windows.shape[-1]
    x = windows.view(-1, H // window_size, W // window_size, window_size,
                     window_size, C)
    return x.transpose(2, 3).reshape(-1, H, W, C)


def split_heads(qkv: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Views of queries, keys and values from a fused projection.

    Args:
        qkv (Tensor): Projected tokens (B, N, 3, heads, d).

    Returns:
        tuple[Tensor]: ``q``, ``k``, ``v``, each (B, heads, N, d). Taken
        apart along dim 2, so that in backward their gradients are stacked
        straight into the layout of ``qkv`` (one copy, no reshape).
    """
    return tuple(t.transpose(1, 2) for t in qkv.unbind(2))


class WindowAttention(BaseModule):
    """Multi-head softmax attention inside non-overlapping windows.

    As in the authors' implementation there is no relative position bias, no
    shifted window and no mask: the map is zero-padded on the right and
    bottom to a multiple of the window size and the padded tokens take part in
    attention.

    Args:
        embed_dims (int): Number of input channels.
        num_heads (int): Number of attention heads.
        window_size (int): The window side.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self, embed_dims, num_heads, window_size, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = nn.Linear(embed_dims, embed_dims * 3)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend inside windows.

        Args:
            x (Tensor): A normalized channels-last map (B, H, W, C).

        Returns:
            Tensor: The attended map (B, H, W, C); a view that crops the
            padded result when the map was padded.
        """
        B, H, W, C = x.shape
        ws = self.window_size
        x = pad_to_multiple(x, ws, channels_last=True)
        Hp, Wp = x.shape[1], x.shape[2]
        windows = window_partition(x, ws)
        qkv = self.qkv(windows).view(-1, ws * ws, 3, self.num_heads,
                                     C // self.num_heads)
        q, k, v = split_heads(qkv)
        if torch.jit.is_tracing():
            # Explicit matmuls when traced (FLOP counting, ONNX export): the
            # same result as the fused kernel, visible to op-level tools.
            attn = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
            out = attn.softmax(dim=-1) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        # As the authors: project the windows, then merge and crop; the
        # crop stays a view (the residual add reads through it).
        out = self.proj(out.transpose(1, 2).reshape(-1, ws * ws, C))
        out = window_reverse(out, ws, Hp, Wp)
        if torch.jit.is_tracing() or (Hp, Wp) != (H, W):
            out = out[:, :H, :W]
        return out


class LinearAttention(BaseModule):
    """Enhanced linear global attention (ReLU kernel, clamped denominator).

    Args:
        embed_dims (int): Number of input channels.
        num_heads (int): Number of attention heads.
        min_denominator (float): Lower clamp of the normaliser, 100 in the
            authors' implementation. Defaults to 100.
        recompute_in_backward (bool): In eager training, keep q, k, v in
            their dtype and recompute the numerators in backward
            (:class:`LinearAttentionFunction`) instead of keeping autograd's
            float32 copies. Defaults to True.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 embed_dims,
                 num_heads,
                 min_denominator=100.,
                 recompute_in_backward=True,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_heads = num_heads
        self.min_denominator = min_denominator
        self.recompute_in_backward = recompute_in_backward
        head_dims = embed_dims // num_heads
        self.temperature = nn.Parameter(
            torch.full((num_heads, 1, 1), head_dims**-0.5))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend globally in time linear in the number of tokens.

        Args:
            x (Tensor): A normalized channels-last map (B, H, W, C).

        Returns:
            Tensor: The attended map (B, H, W, C).
        """
        B, H, W, C = x.shape
        qkv = self.qkv(x).view(B, H * W, 3, self.num_heads,
                               C // self.num_heads)
        q, k, v = split_heads(qkv)
        out = linear_attention_core(
            F.relu(q), F.relu(k), v, self.temperature, self.min_denominator,
            self.recompute_in_backward)
        return self.proj(out.transpose(1, 2).reshape(B, H, W, C))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) tokens -> (1, heads, N, d)."""
        return x.view(1, x.shape[0], self.num_heads, -1).transpose(1, 2)

    def add_in_chunks_(self, x: torch.Tensor, norm: nn.Module,
                       chunks: List[torch.Tensor]) -> torch.Tensor:
        """Add ``self(norm(x))`` to one image's tokens, chunk by chunk.

        For inference on a large map: a first pass sums the keys' and
        values' state over the chunks, a second one reads it with each
        chunk's queries and adds the projected result into the chunk in
        place. Each pass projects only what it needs (k and v, then q), so
        nothing is computed twice but the norm.

        Args:
            x (Tensor): One image's tokens (N, C), which ``chunks`` cover;
                changed in place.
            norm (nn.Module): The token-wise norm before the attention.
            chunks (list[Tensor]): Views of ``x`` of shape (n, C).

        Returns:
            Tensor: ``x`` holding ``x + self(norm(x))``.
        """
        C = x.shape[-1]
        weight, bias = self.qkv.weight, self.qkv.bias
        state = 0
        for chunk in chunks:
            k, v = F.linear(norm(chunk), weight[C:], bias[C:]).chunk(2, -1)
            state = state + linear_attention_state(
                self._heads(F.relu(k)), self._heads(v), self.temperature)
        for chunk in chunks:
            q = F.linear(norm(chunk), weight[:C], bias[:C])
            out = linear_attention_read(
                self._heads(F.relu(q)), state, self.min_denominator)
            chunk.add_(self.proj(out.transpose(1, 2).reshape(-1, C)))
        return x
