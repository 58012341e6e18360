# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The local-window (LWA) and linear-global (LGA) blocks of L2ViT.

All blocks work on channels-last maps of shape (B, H, W, C): token-wise
layers (norms, linear layers) need no reshaping and the depthwise
convolutions see a channels-last tensor through a free ``permute``.
"""
from functools import partial
from typing import Callable

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule

from .attention import LinearAttention, WindowAttention
from .chunked_inference import (image_chunks, runs_in_chunks, token_chunks,
                                tokens_per_chunk, trains_eagerly_on_cpu,
                                window_row_chunks)
from .depthwise_conv import depthwise_conv2d
from .gelu_mlp import gelu_mlp


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """View a channels-last (B, H, W, C) map as (B, C, H, W) without copy."""
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """View a (B, C, H, W) map as channels-last (B, H, W, C)."""
    return x.permute(0, 2, 3, 1)


def add_residual(shortcut: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """Return ``shortcut + branch``, in ``branch``'s memory when possible.

    ``branch`` must be a fresh result that autograd does not keep for
    backward (the output of a linear layer, a convolution or a drop path):
    adding in place then saves allocating and writing one more map per
    residual. A strided ``branch`` (a cropped view) is added out of place,
    so that the sum is contiguous, and so is a view that autograd records
    (a permuted convolution output in training): in place, backward would
    rebuild the gradient of its whole base through a generic strided copy.

    Args:
        shortcut (Tensor): The residual input (B, H, W, C).
        branch (Tensor): The branch output of the same shape.

    Returns:
        Tensor: The sum, contiguous when ``branch`` is.
    """
    if branch.is_contiguous() and not (branch.requires_grad
                                       and branch._base is not None):
        return branch.add_(shortcut)
    return shortcut + branch


def add_prenorm_branch(x: torch.Tensor, norm: nn.Module, branch: nn.Module,
                       drop_path: nn.Module, split: Callable) -> torch.Tensor:
    """Return ``x + drop_path(branch(norm(x)))``.

    In eager CPU inference (see :func:`runs_in_chunks`) the branch runs on
    the chunks ``split(x)`` one at a time and its output is added into
    ``x`` in place, with the same result: the branch's wide intermediates
    stay in cache. ``x`` must be a block's own intermediate map.

    Args:
        x (Tensor): A channels-last map (B, H, W, C).
        norm (nn.Module): The token-wise norm before the branch.
        branch (nn.Module): The branch; it must mix tokens only inside the
            chunks that ``split`` makes.
        drop_path (nn.Module): Drop path (or identity) on the branch.
        split (Callable): Maps ``x`` to views of it covering it without
            overlap.

    Returns:
        Tensor: The sum, of the shape of ``x``.
    """
    if runs_in_chunks(x, branch):
        for chunk in split(x):
            chunk.add_(branch(norm(chunk)))
        return x
    return add_residual(x, drop_path(branch(norm(x))))


class ConvPosEnc(BaseModule):
    """Conditional position encoding: ``x + dwconv3x3(x)``.

    Args:
        embed_dims (int): Number of channels.
        kernel_size (int): Kernel size of the depthwise conv. Defaults to 3.
    """

    def __init__(self, embed_dims, kernel_size=3):
        super().__init__()
        self.proj = nn.Conv2d(
            embed_dims,
            embed_dims,
            kernel_size,
            padding=kernel_size // 2,
            groups=embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the position encoding to a channels-last map (B, H, W, C)."""
        return add_residual(x, _nhwc(self.proj(_nchw(x))))


class LocalConcentration(BaseModule):
    """Local concentration module (LCM) that follows linear attention.

    Depthwise conv 7x7 -> GELU -> BatchNorm -> depthwise conv 7x7. Training
    on the CPU computes the convolutions' weight gradients with
    :func:`depthwise_conv2d` (the same result, faster).

    Args:
        embed_dims (int): Number of channels.
        kernel_size (int): Kernel size of both depthwise convs.
            Defaults to 7.
    """

    def __init__(self, embed_dims, kernel_size=7):
        super().__init__()
        conv = dict(
            in_channels=embed_dims,
            out_channels=embed_dims,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            groups=embed_dims)
        self.conv1 = nn.Conv2d(**conv)
        self.act = nn.GELU()
        self.bn = nn.BatchNorm2d(embed_dims)
        self.conv2 = nn.Conv2d(**conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter a channels-last map (B, H, W, C); returns the same shape.
        """
        x = self._conv(self.conv1, _nchw(x))
        x = self._conv(self.conv2, self.bn(self.act(x)))
        return _nhwc(x)

    @property
    def halo(self) -> int:
        """Rows above and below an output row that it depends on."""
        return self.conv1.padding[0] + self.conv2.padding[0]

    def forward_rows(self, x: torch.Tensor, start: int,
                     stop: int) -> torch.Tensor:
        """The rows ``start:stop`` of ``self(x)``, computed from the rows of
        ``x`` they depend on only (:attr:`halo` rows on either side).

        Args:
            x (Tensor): A channels-last map (B, H, W, C).
            start (int): First output row.
            stop (int): End of the output rows.

        Returns:
            Tensor: A channels-last map (B, stop - start, W, C).
        """
        H, pad = x.shape[1], self.conv2.padding[0]
        lo, hi = max(0, start - self.halo), min(H, stop + self.halo)
        mid_lo, mid_hi = max(0, start - pad), min(H, stop + pad)
        y = self.conv1(_nchw(x[:, lo:hi]))[:, :, mid_lo - lo:mid_hi - lo]
        y = self.conv2(self.bn(self.act(y)))
        return _nhwc(y[:, :, start - mid_lo:stop - mid_lo])

    @staticmethod
    def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """``conv(x)``; in CPU training through :func:`depthwise_conv2d`
        for kernels of 5x5 and more, where it is faster."""
        if conv.kernel_size[0] >= 5 and trains_eagerly_on_cpu(
                x, conv.weight):
            return depthwise_conv2d(x, conv)
        return conv(x)


class Mlp(BaseModule):
    """Linear -> GELU -> Linear.

    Args:
        embed_dims (int): Number of input and output channels.
        hidden_dims (int): Number of hidden channels.
    """

    def __init__(self, embed_dims, hidden_dims):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform each token of a (..., C) tensor.

        Training on the CPU goes through :func:`gelu_mlp` (the same
        result; GELU recomputed in backward instead of stored, chunks of
        tokens kept in cache).
        """
        if trains_eagerly_on_cpu(x, self.fc1.weight):
            return gelu_mlp(x, self.fc1, self.fc2, self.act.approximate)
        return self.fc2(self.act(self.fc1(x)))


class _CheckpointedBlock(BaseModule):
    """A block whose body can run under activation checkpointing.

    Args:
        with_cp (bool): Recompute the body in backward instead of storing
            its activations. Defaults to False.
    """

    def __init__(self, with_cp=False):
        super().__init__()
        self.with_cp = with_cp

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _add_mlp(self, x: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(mlp(norm2(x)))``, the last step of every block."""
        split = partial(token_chunks, width=self.mlp.fc1.out_features)
        return add_prenorm_branch(x, self.norm2, self.mlp, self.drop_path,
                                  split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block on a channels-last map (B, H, W, C)."""
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._body, x, use_reentrant=False)
        return self._body(x)


class LWABlock(_CheckpointedBlock):
    """Local window attention block (even block indices).

    ``x = cpe0(x); x = x + dp(WA(LN(x))); x = cpe1(x);
    x = x + dp(MLP(LN(x)))``.

    Args:
        embed_dims (int): Number of channels.
        num_heads (int): Number of attention heads.
        window_size (int): The window side.
        mlp_ratio (float): Hidden/input channel ratio of the MLP.
            Defaults to 4.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        with_cp (bool): Use activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims,
                 num_heads,
                 window_size,
                 mlp_ratio=4.,
                 drop_path=0.,
                 with_cp=False):
        super().__init__(with_cp=with_cp)
        self.cpe = nn.ModuleList(
            [ConvPosEnc(embed_dims),
             ConvPosEnc(embed_dims)])
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = WindowAttention(embed_dims, num_heads, window_size)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cpe[0](x)
        x = self._add_attention(x)
        x = self.cpe[1](x)
        return self._add_mlp(x)

    def _add_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(attn(norm1(x)))``; in CPU inference by chunks of
        whole rows of windows."""
        split = partial(
            window_row_chunks,
            window_size=self.attn.window_size,
            width=3 * x.shape[-1])
        return add_prenorm_branch(x, self.norm1, self.attn, self.drop_path,
                                  split)


class LGABlock(_CheckpointedBlock):
    """Enhanced linear global attention block (odd block indices).

    ``x = cpe0(x); x = x + dp(LA(LN1(x))); x = x + dp(LCM(LN3(x)));
    x = x + dp(MLP(LN2(x)))``.

    Args:
        embed_dims (int): Number of channels.
        num_heads (int): Number of attention heads.
        mlp_ratio (float): Hidden/input channel ratio of the MLP.
            Defaults to 4.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        with_cp (bool): Use activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims,
                 num_heads,
                 mlp_ratio=4.,
                 drop_path=0.,
                 with_cp=False):
        super().__init__(with_cp=with_cp)
        self.cpe = nn.ModuleList([ConvPosEnc(embed_dims)])
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = LinearAttention(embed_dims, num_heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm3 = nn.LayerNorm(embed_dims)
        self.local_mp = LocalConcentration(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cpe[0](x)
        x = self._add_attention(x)
        x = self._add_local_concentration(x)
        return self._add_mlp(x)

    def _add_local_concentration(self, x: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(local_mp(norm3(x)))``; in CPU inference by groups
        of whole images or, for larger images, by strips of rows."""
        B, H, W, C = x.shape
        if H * W <= tokens_per_chunk(C) or not runs_in_chunks(
                x, self.local_mp):
            split = partial(image_chunks, width=C)
            return add_prenorm_branch(x, self.norm3, self.local_mp,
                                      self.drop_path, split)
        halo = self.local_mp.halo
        rows = max(halo, tokens_per_chunk(C) // W)
        for image in x.split(1):
            # A strip's result is added only after the next strip has read
            # the rows it shares with it (``rows >= halo``).
            strip = result = None
            for start in range(0, H, rows):
                stop = min(H, start + rows)
                lo = max(0, start - halo)
                normed = self.norm3(image[:, lo:min(H, stop + halo)])
                if result is not None:
                    strip.add_(result)
                strip = image[:, start:stop]
                result = self.local_mp.forward_rows(normed, start - lo,
                                                    stop - lo)
            strip.add_(result)
        return x

    def _add_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(attn(norm1(x)))``; in CPU inference, images too
        large for one chunk attend in two passes over chunks of tokens."""
        B, H, W, C = x.shape
        if H * W <= tokens_per_chunk(3 * C) or not runs_in_chunks(
                x, self.attn):
            split = partial(image_chunks, width=3 * C)
            return add_prenorm_branch(x, self.norm1, self.attn,
                                      self.drop_path, split)
        for image in x.view(B, H * W, C):
            self.attn.add_in_chunks_(image, self.norm1,
                                     token_chunks(image, 3 * C))
        return x
