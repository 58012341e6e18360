# Copyright (c) l2vit_mm contributors. All rights reserved.
"""A straightforward port of the authors' L2ViT layers (reference only).

This file mirrors the structure of the authors' released model file: token
sequences of shape (B, N, C) with the map size passed along, pad + window
partition for local attention, separate q/k/v tensors and an explicit
softmax, linear attention as written in the paper. It has the authors'
parameter names, so their checkpoints load into it unchanged.

It is not part of the package. It serves two purposes:

* the baseline of ``benchmark_backbones.py`` (the speed-up of
  :class:`l2vit_mm.L2ViT` is measured against it), and
* a second implementation for the parity tests, which check it against the
  authors' recorded outputs and then check the package against it for
  configurations the recorded outputs do not cover (other window sizes,
  class counts, input sizes).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvPosEnc(nn.Module):

    def __init__(self, dim, k=3):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, k, 1, k // 2, groups=dim)

    def forward(self, x, size):
        B, N, C = x.shape
        H, W = size
        feat = x.transpose(1, 2).view(B, C, H, W)
        feat = self.proj(feat).flatten(2).transpose(1, 2)
        return x + feat


class Mlp(nn.Module):

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def window_partition(x, ws):
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws * ws, C)


def window_reverse(windows, ws, H, W):
    B = int(windows.shape[0] / (H * W / ws / ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


class WindowAttention(nn.Module):

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads,
                                  C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class LinearAttention(nn.Module):

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(
            torch.ones(num_heads, 1, 1) * (dim // num_heads)**-0.5)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads,
                                  C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = F.relu(q)
        k = F.relu(k)
        kv = (k.transpose(-2, -1) @ v) * self.temperature
        k_sum = k.sum(dim=-2, keepdim=True)
        denom = (q * k_sum).sum(dim=-1, keepdim=True).clamp(min=100.)
        x = (q @ kv) / denom
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class LocalConcentration(nn.Module):

    def __init__(self, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 7, 1, 3, groups=dim)
        self.act = nn.GELU()
        self.bn = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, 7, 1, 3, groups=dim)

    def forward(self, x, size):
        B, N, C = x.shape
        H, W = size
        x = x.transpose(1, 2).view(B, C, H, W)
        x = self.conv2(self.bn(self.act(self.conv1(x))))
        return x.flatten(2).transpose(1, 2)


class DropPath(nn.Module):

    def __init__(self, p=0.):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0. or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.dim() - 1))
        return x * mask.bernoulli_(keep) / keep


class LWABlock(nn.Module):

    def __init__(self, dim, num_heads, window_size, mlp_ratio, drop_path):
        super().__init__()
        self.window_size = window_size
        self.cpe = nn.ModuleList([ConvPosEnc(dim), ConvPosEnc(dim)])
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, size):
        H, W = size
        B, L, C = x.shape
        ws = self.window_size
        x = self.cpe[0](x, size)
        shortcut = x
        x = self.norm1(x).view(B, H, W, C)
        pad_r = (ws - W % ws) % ws
        pad_b = (ws - H % ws) % ws
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, Hp, Wp, _ = x.shape
        x_windows = window_partition(x, ws)
        attn_windows = self.attn(x_windows)
        x = window_reverse(attn_windows, ws, Hp, Wp)
        if pad_r > 0 or pad_b > 0:
            x = x[:, :H, :W, :].contiguous()
        x = shortcut + self.drop_path(x.view(B, H * W, C))
        x = self.cpe[1](x, size)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class LGABlock(nn.Module):

    def __init__(self, dim, num_heads, mlp_ratio, drop_path):
        super().__init__()
        self.cpe = nn.ModuleList([ConvPosEnc(dim)])
        self.norm1 = nn.LayerNorm(dim)
        self.attn = LinearAttention(dim, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm3 = nn.LayerNorm(dim)
        self.local_mp = LocalConcentration(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, size):
        x = self.cpe[0](x, size)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.local_mp(self.norm3(x), size))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class StemConv(nn.Module):

    def __init__(self, in_chans, dim):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, dim // 2, 3, 2, 1), nn.BatchNorm2d(dim // 2),
            nn.ReLU(inplace=True), nn.Conv2d(dim // 2, dim, 3, 2, 1),
            nn.BatchNorm2d(dim))

    def forward(self, x):
        return self.proj(x)


class Stem(nn.Module):

    def __init__(self, in_chans, dim):
        super().__init__()
        self.proj = StemConv(in_chans, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, size):
        H, W = size
        if W % 4 != 0:
            x = F.pad(x, (0, 4 - W % 4))
        if H % 4 != 0:
            x = F.pad(x, (0, 0, 0, 4 - H % 4))
        x = self.proj(x)
        newsize = (x.size(2), x.size(3))
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x, newsize


class PatchMerge(nn.Module):

    def __init__(self, in_dim, dim):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Conv2d(in_dim, dim, 2, 2)

    def forward(self, x, size):
        H, W = size
        B, N, C = x.shape
        x = self.norm(x).transpose(1, 2).reshape(B, C, H, W)
        if W % 2 != 0:
            x = F.pad(x, (0, 1))
        if H % 2 != 0:
            x = F.pad(x, (0, 0, 0, 1))
        x = self.proj(x)
        newsize = (x.size(2), x.size(3))
        return x.flatten(2).transpose(1, 2), newsize


class ReferenceL2ViT(nn.Module):
    """The authors' model, in their layout and key names.

    Args:
        dims (list[int]): Channels per stage.
        depths (list[int]): Blocks per stage.
        num_heads (list[int]): Heads per stage.
        window_size (int): Local window side.
        num_classes (int): Classes of the head; 0 gives a dense-task model
            with ``norm{i}`` per out index instead of ``norm`` + ``head``.
        out_indices (tuple[int]): Stages returned by the dense-task model.
        in_chans (int): Input channels.
        mlp_ratio (float): MLP expansion.
        drop_path_rate (float): Stochastic depth, linear over blocks.
    """

    def __init__(self,
                 dims=(96, 192, 384, 768),
                 depths=(2, 2, 6, 2),
                 num_heads=(3, 6, 12, 24),
                 window_size=7,
                 num_classes=1000,
                 out_indices=(0, 1, 2, 3),
                 in_chans=3,
                 mlp_ratio=4.,
                 drop_path_rate=0.):
        super().__init__()
        self.num_classes = num_classes
        self.out_indices = out_indices
        self.downsample_layers = nn.ModuleList([Stem(in_chans, dims[0])] + [
            PatchMerge(dims[i - 1], dims[i]) for i in range(1, len(dims))
        ])
        dpr = [
            x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))
        ]
        self.stages = nn.ModuleList()
        cur = 0
        for i, depth in enumerate(depths):
            blocks = []
            for j in range(depth):
                if j % 2 == 0:
                    blocks.append(
                        LWABlock(dims[i], num_heads[i], window_size,
                                 mlp_ratio, dpr[cur + j]))
                else:
                    blocks.append(
                        LGABlock(dims[i], num_heads[i], mlp_ratio,
                                 dpr[cur + j]))
            self.stages.append(nn.ModuleList(blocks))
            cur += depth
        if num_classes > 0:
            self.norm = nn.LayerNorm(dims[-1])
            self.head = nn.Linear(dims[-1], num_classes)
        else:
            for i in out_indices:
                self.add_module(f'norm{i}', nn.LayerNorm(dims[i]))

    def forward(self, x):
        size = (x.size(2), x.size(3))
        outs = []
        for i, stage in enumerate(self.stages):
            x, size = self.downsample_layers[i](x, size)
            for blk in stage:
                x = blk(x, size)
            if self.num_classes == 0 and i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(
                    out.transpose(1, 2).reshape(x.shape[0], -1, *size))
        if self.num_classes > 0:
            return self.head(self.norm(x).mean(1))
        return tuple(outs)
