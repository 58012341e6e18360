# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The local-window (LWA) and linear-global (LGA) blocks of L2ViT.

All blocks work on channels-last maps of shape (B, H, W, C): token-wise
layers (norms, linear layers) need no reshaping and the depthwise
convolutions see a channels-last tensor through a free ``permute``.
"""
from contextlib import contextmanager, nullcontext
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule

from .attention import LinearAttention, WindowAttention
from .chunked_inference import (image_chunks, runs_in_chunks, token_chunks,
                                tokens_per_chunk, window_row_chunks)
from .depthwise_conv import depthwise_conv2d
from .execution_mode import autocast_dtype, hooks_within, trains_eagerly
from .gelu_mlp import gelu_mlp
from .residual import add_local_branch, add_prenorm_branch, add_residual


#: Device types on which float32 training (no autocast) runs the depthwise
#: convolutions of 5x5 and more on NCHW maps (measured on CUDA: see
#: docs/benchmark.md, "fp32 training: the 7x7 depthwise convolutions on
#: NCHW maps").
NCHW_TRAINING_DEVICES = ('cuda', )


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """View a channels-last (B, H, W, C) map as (B, C, H, W) without copy."""
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """View a (B, C, H, W) map as channels-last (B, H, W, C)."""
    return x.permute(0, 2, 3, 1)


class ChannelsLastDepthwiseConv(nn.Conv2d):
    """A depthwise, 'same'-padded, stride-1 convolution of channels-last
    maps (B, H, W, C), which it sees as (B, C, H, W) through a free
    ``permute``.

    Kernels of 5x5 and more take another path in eager training: on the
    CPU :func:`depthwise_conv2d` (its weight gradient is faster; for 3x3
    PyTorch's own is faster); in float32 without autocast on a device of
    :data:`NCHW_TRAINING_DEVICES` the convolution runs on an NCHW copy of
    the map (cuDNN's float32 forward + backward of 7x7 kernels is faster
    so; its channels-last kernels are faster under autocast, in
    inference and for 3x3 kernels).

    Args:
        embed_dims (int): Number of channels.
        kernel_size (int): An odd kernel size.
    """

    def __init__(self, embed_dims, kernel_size):
        super().__init__(
            embed_dims,
            embed_dims,
            kernel_size,
            padding=kernel_size // 2,
            groups=embed_dims)
        # The strides of the channels-last weight gradients that backward
        # computes from channels-last maps, so that DistributedDataParallel
        # finds them matching its buckets (it warns and copies otherwise).
        weight = torch.empty_strided(
            self.weight.shape, (kernel_size**2, 1, kernel_size, 1))
        self.weight = nn.Parameter(weight.copy_(self.weight.detach()))

    @property
    def halo(self) -> int:
        """Rows above and below an output row that it depends on."""
        return self.padding[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter a channels-last map (B, H, W, C); returns the same shape
        (a channels-last view of an NCHW result on the NCHW path).
        """
        x = _nchw(x)
        if self.kernel_size[0] >= 5 and trains_eagerly(x, self.weight):
            if (x.device.type in NCHW_TRAINING_DEVICES
                    and x.dtype == torch.float32
                    and autocast_dtype(x.device.type) is None
                    and self.weight.is_contiguous()):
                return _nhwc(self._conv_nchw(x))
            if x.device.type == 'cpu':
                return _nhwc(depthwise_conv2d(x, self))
        return _nhwc(super().forward(x))

    def _conv_nchw(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of an NCHW-contiguous copy of ``x`` (B, C, H, W)
        with the (dense) weight viewed in the default strides, so that the
        backend runs NCHW kernels; returns an NCHW map."""
        k = self.kernel_size[0]
        weight = self.weight.as_strided(self.weight.shape,
                                        (k * k, k * k, k, 1))
        return F.conv2d(x.contiguous(), weight, self.bias, self.stride,
                        self.padding, self.dilation, self.groups)

    def forward_rows(self, x: torch.Tensor, start: int,
                     stop: int) -> torch.Tensor:
        """The rows ``start:stop`` of ``self(x)``, computed from the rows of
        ``x`` they depend on only.

        Args:
            x (Tensor): A channels-last map (B, H, W, C).
            start (int): First output row.
            stop (int): End of the output rows.

        Returns:
            Tensor: A channels-last map (B, stop - start, W, C).
        """
        lo = max(0, start - self.halo)
        rows = self(x[:, lo:min(x.shape[1], stop + self.halo)])
        return rows[:, start - lo:stop - lo]


class ConvPosEnc(BaseModule):
    """Conditional position encoding: ``x + dwconv3x3(x)``.

    Args:
        embed_dims (int): Number of channels.
        kernel_size (int): Kernel size of the depthwise conv. Defaults to 3.
    """

    def __init__(self, embed_dims, kernel_size=3):
        super().__init__()
        self.proj = ChannelsLastDepthwiseConv(embed_dims, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the position encoding to a channels-last map (B, H, W, C).

        Out of place: the input of a block's first position encoding is
        the caller's (a previous block's output, which hooks may hold).
        """
        return add_residual(x, self.proj(x), not hooks_within(self))


class LocalConcentration(BaseModule):
    """Local concentration module (LCM) that follows linear attention.

    Depthwise conv 7x7 -> GELU -> BatchNorm -> depthwise conv 7x7.

    Args:
        embed_dims (int): Number of channels.
        kernel_size (int): Kernel size of both depthwise convs.
            Defaults to 7.
    """

    def __init__(self, embed_dims, kernel_size=7):
        super().__init__()
        self.conv1 = ChannelsLastDepthwiseConv(embed_dims, kernel_size)
        self.act = nn.GELU()
        self.bn = nn.BatchNorm2d(embed_dims)
        self.conv2 = ChannelsLastDepthwiseConv(embed_dims, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter a channels-last map (B, H, W, C); returns the same shape.
        """
        return self.conv2(self._act_norm(self.conv1(x)))

    def _act_norm(self, x: torch.Tensor) -> torch.Tensor:
        return _nhwc(self.bn(_nchw(self.act(x))))

    @property
    def halo(self) -> int:
        """Rows above and below an output row that it depends on."""
        return self.conv1.halo + self.conv2.halo

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
        lo = max(0, start - self.conv2.halo)
        hi = min(x.shape[1], stop + self.conv2.halo)
        y = self._act_norm(self.conv1.forward_rows(x, lo, hi))
        return self.conv2.forward_rows(y, start - lo, stop - lo)


class Mlp(BaseModule):
    """Linear -> GELU -> Linear.

    Args:
        embed_dims (int): Number of input and output channels.
        hidden_dims (int): Number of hidden channels.
        recompute_in_backward (bool): In eager training, recompute GELU in
            backward instead of keeping its output (:func:`gelu_mlp`).
            Defaults to True.
    """

    def __init__(self, embed_dims, hidden_dims, recompute_in_backward=True):
        super().__init__()
        self.recompute_in_backward = recompute_in_backward
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform each token of a (..., C) tensor.

        With ``recompute_in_backward``, eager training goes through
        :func:`gelu_mlp` (the same result; GELU recomputed in backward
        instead of stored, and on the CPU chunks of tokens kept in
        cache), unless hooks watch the layers (which it does not call).
        """
        if (self.recompute_in_backward and trains_eagerly(x, self.fc1.weight)
                and not hooks_within(self)):
            return gelu_mlp(x, self.fc1, self.fc2, self.act.approximate)
        return self.fc2(self.act(self.fc1(x)))


@contextmanager
def running_stats_kept(module: nn.Module):
    """Restore, on exit, the running statistics of the BatchNorms in
    ``module`` that normalize by batch statistics (training mode).

    The recomputation of a checkpointed block in backward runs them a
    second time; under this context their statistics stay those of the
    forward pass, as without checkpointing.

    Args:
        module (nn.Module): The module whose BatchNorms to guard.
    """
    norms = [
        m for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
        and m.track_running_stats
    ]
    saved = [[t.clone() for t in (m.running_mean, m.running_var,
                                  m.num_batches_tracked)] for m in norms]
    try:
        yield
    finally:  # also when checkpointing stops the recomputation early
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


class _CheckpointedBlock(BaseModule):
    """A block whose body can run under activation checkpointing.

    Args:
        with_cp (bool): Recompute the body in backward instead of storing
            its activations. Defaults to False.
    """

    def __init__(self, with_cp=False):
        super().__init__()
        self.with_cp = with_cp

    def _body(self, x: torch.Tensor, in_place: bool) -> torch.Tensor:
        raise NotImplementedError

    def _add_mlp(self, x: torch.Tensor, in_place: bool) -> torch.Tensor:
        """``x + drop_path(mlp(norm2(x)))``, the last step of every block."""
        return add_prenorm_branch(x, self.norm2, self.mlp, self.drop_path,
                                  token_chunks, self.mlp.fc1.out_features,
                                  in_place)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block on a channels-last map (B, H, W, C).

        While hooks watch its layers (:func:`.execution_mode.hooks_within`)
        the block writes no sum into a tensor that a layer returned and
        runs no branch in chunks. With ``with_cp`` the body is recomputed
        in backward whenever autograd records it (the block's parameters
        or its input require gradients), BatchNorm statistics updated once.
        """
        in_place = not hooks_within(self)
        if self.with_cp and torch.is_grad_enabled() and (
                x.requires_grad
                or any(p.requires_grad for p in self.parameters())):
            return cp.checkpoint(
                self._body,
                x,
                in_place,
                use_reentrant=False,
                context_fn=lambda: (nullcontext(), running_stats_kept(self)))
        return self._body(x, in_place)


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
        recompute_in_backward (bool): See :class:`Mlp`. Defaults to True.
    """

    def __init__(self,
                 embed_dims,
                 num_heads,
                 window_size,
                 mlp_ratio=4.,
                 drop_path=0.,
                 with_cp=False,
                 recompute_in_backward=True):
        super().__init__(with_cp=with_cp)
        self.cpe = nn.ModuleList(
            [ConvPosEnc(embed_dims),
             ConvPosEnc(embed_dims)])
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = WindowAttention(embed_dims, num_heads, window_size)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio),
                       recompute_in_backward)

    def _body(self, x: torch.Tensor, in_place: bool) -> torch.Tensor:
        x = self.cpe[0](x)
        x = self._add_attention(x, in_place)
        x = self.cpe[1](x)
        return self._add_mlp(x, in_place)

    def _add_attention(self, x: torch.Tensor,
                       in_place: bool) -> torch.Tensor:
        """``x + drop_path(attn(norm1(x)))``; in CPU inference by chunks of
        whole rows of windows."""
        split = partial(window_row_chunks, window_size=self.attn.window_size)
        return add_prenorm_branch(x, self.norm1, self.attn, self.drop_path,
                                  split, 3 * x.shape[-1], in_place)


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
        recompute_in_backward (bool): See :class:`Mlp` and
            :class:`LinearAttention`. Defaults to True.
    """

    def __init__(self,
                 embed_dims,
                 num_heads,
                 mlp_ratio=4.,
                 drop_path=0.,
                 with_cp=False,
                 recompute_in_backward=True):
        super().__init__(with_cp=with_cp)
        self.cpe = nn.ModuleList([ConvPosEnc(embed_dims)])
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = LinearAttention(
            embed_dims, num_heads, recompute_in_backward=recompute_in_backward)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm3 = nn.LayerNorm(embed_dims)
        self.local_mp = LocalConcentration(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio),
                       recompute_in_backward)

    def _body(self, x: torch.Tensor, in_place: bool) -> torch.Tensor:
        x = self.cpe[0](x)
        x = self._add_attention(x, in_place)
        x = add_local_branch(x, self.norm3, self.local_mp, self.drop_path,
                             x.shape[-1], in_place)
        return self._add_mlp(x, in_place)

    def _add_attention(self, x: torch.Tensor,
                       in_place: bool) -> torch.Tensor:
        """``x + drop_path(attn(norm1(x)))``; in CPU inference, images too
        large for one chunk attend in two passes over chunks of tokens."""
        B, H, W, C = x.shape
        if (not in_place or H * W <= tokens_per_chunk(3 * C)
                or not runs_in_chunks(x, self.attn, 3 * C)):
            return add_prenorm_branch(x, self.norm1, self.attn,
                                      self.drop_path, image_chunks, 3 * C,
                                      in_place)
        for image in x.view(B, H * W, C):
            self.attn.add_in_chunks_(image, self.norm1,
                                     token_chunks(image, 3 * C))
        return x
