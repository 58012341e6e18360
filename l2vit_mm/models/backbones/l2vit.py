# Copyright (c) l2vit_mm contributors. All rights reserved.
from itertools import chain
from typing import Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import ConvStem, Downsample, LGABlock, LWABlock
from ..layers.execution_mode import runs_eagerly
from .compile_options import compile_options


def _check_number(name, value, types, minimum=None, maximum=None,
                  open_minimum=False):
    """Raise a ValueError naming ``name`` unless ``value`` is in range.

    Args:
        name (str): The argument's name, for the message.
        value: The value to check.
        types (type | tuple[type]): Accepted types (``bool`` never is).
        minimum (float, optional): Lower bound. Defaults to None.
        maximum (float, optional): Upper bound (excluded). Defaults to None.
        open_minimum (bool): Exclude ``minimum`` itself. Defaults to False.
    """
    ok = isinstance(value, types) and not isinstance(value, bool)
    if ok and minimum is not None:
        ok = value > minimum if open_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum
    if not ok:
        bounds = []
        if minimum is not None:
            bounds.append(f'{">" if open_minimum else ">="} {minimum}')
        if maximum is not None:
            bounds.append(f'< {maximum}')
        kind = 'an int' if types is int else 'a number'
        raise ValueError(f'L2ViT: {name} must be {kind} '
                         f'{" and ".join(bounds)}, got {value!r}')


def _check_flag(name, value):
    """Raise a TypeError naming ``name`` unless ``value`` is a bool (a
    string such as ``'False'`` would read as true).

    Args:
        name (str): The argument's name, for the message.
        value: The value to check.
    """
    if not isinstance(value, bool):
        raise TypeError(f'L2ViT: {name} must be True or False, got '
                        f'{value!r}')


class L2ViT(BaseModule):
    """L2ViT backbone: local window and linear global attention.

    A PyTorch implementation of `The Linear Attention Resurrection in
    Vision Transformer <https://arxiv.org/abs/2501.16182>`_. Each of the
    four stages starts with a downsampling layer (a convolutional stem for
    the first) and alternates local window attention blocks (even indices)
    with enhanced linear global attention blocks (odd indices). Parameter
    names follow the authors' release, so their checkpoints load after a
    prefix change.

    Args:
        arch (str | dict): L2ViT architecture. One of ``'tiny'``,
            ``'small'``, ``'base'`` (or ``'t'``, ``'s'``, ``'b'``), or a dict
            with the keys ``embed_dims``, ``depths`` and ``num_heads``, each a
            list with one entry per stage. Defaults to ``'tiny'``.
        in_channels (int): Number of input image channels. Defaults to 3.
        window_size (int): Side of the local attention windows.
            Defaults to 7.
        mlp_ratio (float): Ratio of the MLP hidden channels to the input
            channels. Defaults to 4.
        drop_path_rate (float): Stochastic depth rate, increased linearly
            from 0 over all blocks. Defaults to 0.
        out_indices (Sequence[int] | int): Stages whose outputs are returned,
            each after its own LayerNorm ``norm{i}``. Negative indices count
            from the last stage. Defaults to ``(3, )``.
        frozen_stages (int): ``0`` freezes the stem, ``k > 0`` freezes the
            stem and stages ``0 .. k-1`` (a stage includes the downsampling
            layer in front of it, and its ``norm{i}``). ``-1`` freezes
            nothing. Defaults to -1.
        norm_eval (bool): Keep the BatchNorm layers in eval mode while
            training (frozen running statistics). Defaults to False.
        with_cp (bool): Recompute each block's activations in backward to
            save memory. Defaults to False.
        recompute_in_backward (bool): In eager training, each MLP
            recomputes its GELU in backward and linear attention its
            float32 numerators, instead of keeping them: the same results
            and gradients with 23%-32% less memory kept for backward
            (L2ViT-T, fp32 and bf16 autocast). False keeps autograd's
            tensors: a train step measured 1%-9% faster on an H200 and
            4%-5% on a 2-core CPU for 1.26x-1.33x the peak memory, above
            the authors' layers' in bf16 on the H200 (A/B runs in
            docs/benchmark.md).
            Defaults to True.
        compile (bool | dict): Run the forward pass through
            ``torch.compile``: True, or a dict of its keyword arguments
            (e.g. ``dict(mode='reduce-overhead')``); static shapes
            (``dynamic=False``) unless the dict says otherwise. It
            compiles on the first call, again for each new input shape
            and for train/eval and grad mode, keeps the parameter names,
            and leaves the optimizer step and the heads eager, unlike
            mmengine's top-level ``compile``. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to truncated normal (std 0.02) for linear and conv
            layers, ones and zeros for norms, as the authors.

    Note:
        The network runs on channels-last ``(B, H, W, C)`` maps internally;
        ``forward`` takes and returns NCHW tensors. Inputs of any size work:
        the stem pads to a multiple of 4, downsampling layers pad odd sizes
        and window attention pads to a multiple of the window, all with
        zeros on the right and bottom, as the authors' implementation. In
        training, BatchNorm needs more than one value per channel: a batch
        of one image needs H or W above 32 (the last stage's map is
        ``ceil(H/32) x ceil(W/32)``), unless ``norm_eval``.
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'],
                        {'embed_dims': [96, 192, 384, 768],
                         'depths':     [2, 2, 6, 2],
                         'num_heads':  [3, 6, 12, 24]}),
        **dict.fromkeys(['s', 'small'],
                        {'embed_dims': [96, 192, 384, 768],
                         'depths':     [2, 2, 18, 2],
                         'num_heads':  [3, 6, 12, 24]}),
        **dict.fromkeys(['b', 'base'],
                        {'embed_dims': [128, 256, 512, 1024],
                         'depths':     [2, 2, 18, 2],
                         'num_heads':  [4, 8, 16, 32]}),
    }  # yapf: disable
    arch_keys = ('embed_dims', 'depths', 'num_heads')

    def __init__(self,
                 arch='tiny',
                 in_channels=3,
                 window_size=7,
                 mlp_ratio=4.,
                 drop_path_rate=0.,
                 out_indices=(3, ),
                 frozen_stages=-1,
                 norm_eval=False,
                 with_cp=False,
                 recompute_in_backward=True,
                 compile=False,
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [
                dict(
                    type='TruncNormal',
                    layer=['Conv2d', 'Linear'],
                    std=.02,
                    bias=0.),
                dict(
                    type='Constant',
                    layer=['LayerNorm', '_BatchNorm'],
                    val=1.,
                    bias=0.)
            ]
        super().__init__(init_cfg=init_cfg)
        _check_number('in_channels', in_channels, int, minimum=1)
        _check_number('window_size', window_size, int, minimum=1)
        _check_number('mlp_ratio', mlp_ratio, (int, float), minimum=0,
                      open_minimum=True)
        _check_number('drop_path_rate', drop_path_rate, (int, float),
                      minimum=0, maximum=1)
        for name, flag in (('with_cp', with_cp), ('norm_eval', norm_eval),
                           ('recompute_in_backward', recompute_in_backward)):
            _check_flag(name, flag)
        self.arch_settings = self.parse_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.depths = self.arch_settings['depths']
        self.num_heads = self.arch_settings['num_heads']
        self.num_stages = len(self.depths)
        if int(min(self.embed_dims) * mlp_ratio) < 1:
            raise ValueError(
                f'L2ViT: mlp_ratio {mlp_ratio!r} leaves no hidden channels in '
                f'the MLPs of embed_dims {min(self.embed_dims)}')
        self.in_channels = in_channels
        self.out_indices = self._parse_out_indices(out_indices)
        _check_number('frozen_stages', frozen_stages, int, minimum=-1,
                      maximum=self.num_stages + 1)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.compile_options = compile_options(compile)

        dpr = torch.linspace(
            0, drop_path_rate, sum(self.depths), device='cpu').tolist()
        self.downsample_layers = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (dims, depth, heads) in enumerate(
                zip(self.embed_dims, self.depths, self.num_heads)):
            if i == 0:
                self.downsample_layers.append(ConvStem(in_channels, dims))
            else:
                self.downsample_layers.append(
                    Downsample(self.embed_dims[i - 1], dims))
            stage_dpr, dpr = dpr[:depth], dpr[depth:]
            self.stages.append(
                nn.Sequential(*[
                    LWABlock(dims, heads, window_size, mlp_ratio,
                             stage_dpr[j], with_cp, recompute_in_backward)
                    if j % 2 == 0 else LGABlock(
                        dims, heads, mlp_ratio, stage_dpr[j], with_cp,
                        recompute_in_backward) for j in range(depth)
                ]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i]))
        self._register_load_state_dict_pre_hook(self._skip_classifier_norm)
        # Frozen from the start, not only from the first ``train()``: an
        # optimizer or a distributed wrapper may be built before it.
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch):
        """Check an architecture name or dict and return its settings.

        Args:
            arch (str | dict): An ``arch_zoo`` name or a dict with the keys
                ``embed_dims``, ``depths`` and ``num_heads``.

        Returns:
            dict: The three per-stage lists.
        """
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(
                    f'Unknown L2ViT arch {arch!r}; valid archs are '
                    f'{sorted(cls.arch_zoo)} or a dict with keys '
                    f'{list(cls.arch_keys)}')
            return {k: list(v) for k, v in cls.arch_zoo[arch.lower()].items()}
        if not isinstance(arch, dict):
            raise TypeError(
                f'arch must be a str or a dict, got {type(arch).__name__}')
        missing = [k for k in cls.arch_keys if k not in arch]
        extra = [k for k in arch if k not in cls.arch_keys]
        if missing or extra:
            raise ValueError(
                f'A custom L2ViT arch needs exactly the keys '
                f'{list(cls.arch_keys)}; missing {missing}, unexpected '
                f'{extra}')
        settings = {}
        for key in cls.arch_keys:
            value = arch[key]
            if (not isinstance(value, Sequence) or len(value) == 0
                    or not all(
                        isinstance(v, int) and not isinstance(v, bool)
                        and v > 0 for v in value)):
                raise ValueError(
                    f'arch[{key!r}] must be a non-empty list of positive '
                    f'ints, got {value!r}')
            settings[key] = list(value)
        lengths = {k: len(v) for k, v in settings.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f'arch lists must have one entry per stage, got lengths '
                f'{lengths}')
        for dims, heads in zip(settings['embed_dims'], settings['num_heads']):
            if dims % heads:
                raise ValueError(
                    f'embed_dims {dims} is not divisible by num_heads {heads}'
                    f' in arch {settings}')
        if settings['embed_dims'][0] % 2:
            raise ValueError('arch embed_dims[0] must be even (the stem has '
                             f'embed_dims[0] // 2 channels), got '
                             f'{settings["embed_dims"][0]}')
        return settings

    def _skip_classifier_norm(self, state_dict, prefix, *args, **kwargs):
        """Keep a classifier's final norm out of a dense-task backbone.

        A converted classification checkpoint holds the authors' final
        ``norm`` as ``norm{last}``, the norm that mmpretrain's classifier
        applies to the last stage. The authors' detection and segmentation
        models drop it and start every ``norm{i}`` fresh; so does a backbone
        that returns other stages too: it does not load ``norm{last}`` from
        a checkpoint that has no other ``norm{i}``.

        Args:
            state_dict (dict): The state dict being loaded; modified in
                place.
            prefix (str): This module's prefix in it.
        """
        last = self.num_stages - 1
        if set(self.out_indices) == {last}:
            return
        norms = [f'{prefix}norm{i}.' for i in range(self.num_stages)]
        present = [any(k.startswith(n) for k in state_dict) for n in norms]
        if not present[last] or any(present[:last]):
            return
        for key in [k for k in state_dict if k.startswith(norms[last])]:
            del state_dict[key]
        print_log(
            f'{norms[last]}* not loaded: a classification checkpoint\'s '
            'final norm; a dense-task L2ViT starts its norm{i} fresh, as '
            'the authors\'', logger='current')

    def _parse_out_indices(self, out_indices):
        if isinstance(out_indices, int) and not isinstance(out_indices, bool):
            out_indices = [out_indices]
        if (not isinstance(out_indices, Sequence)
                or isinstance(out_indices, str) or len(out_indices) == 0
                or not all(
                    isinstance(i, int) and not isinstance(i, bool)
                    for i in out_indices)):
            raise TypeError('out_indices must be an int or a non-empty '
                            f'sequence of ints, got {out_indices!r}')
        parsed = []
        for index in out_indices:
            if not -self.num_stages <= index < self.num_stages:
                raise ValueError(
                    f'out_indices {list(out_indices)} has {index}, out of '
                    f'range for {self.num_stages} stages')
            parsed.append(index % self.num_stages)
        return tuple(sorted(set(parsed)))

    def forward(self, x: torch.Tensor) -> tuple:
        """Extract multi-scale features.

        Args:
            x (Tensor): Images of shape (B, in_channels, H, W).

        Returns:
            tuple[Tensor]: One (B, C_i, ceil(H/s_i), ceil(W/s_i)) map per
            stage in ``out_indices`` (each stage once, in stage order),
            with strides s = 4, 8, 16, 32.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels or min(
                x.shape[2:]) < 1:
            raise ValueError(
                f'L2ViT expects input of shape (N, {self.in_channels}, H, W)'
                f' with H, W >= 1, got {tuple(x.shape)}')
        if self.training and x.shape[0] * -(-x.shape[2] // 32) * -(
                -x.shape[3] // 32) == 1 and any(
                    m.training for m in self.stages[-1].modules()
                    if isinstance(m, _BatchNorm)):
            raise ValueError(
                'L2ViT: BatchNorm in training mode needs more than one value '
                f'per channel, but input {tuple(x.shape)} gives a 1x1 map at '
                'the last stage: train on more images or larger ones, or '
                'with norm_eval=True')
        if self.compile_options is not None and runs_eagerly():
            return self._compiled_features()(x)
        return self._features(x)

    def _features(self, x: torch.Tensor) -> tuple:
        outs = []
        for i in range(self.num_stages):
            x = self.stages[i](self.downsample_layers[i](x))
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def _compiled_features(self):
        """``torch.compile`` of :meth:`_features`, made on first use."""
        compiled = self.__dict__.get('_compiled')
        if compiled is None:
            print_log(
                'L2ViT: the forward pass runs through torch.compile('
                f'{self.compile_options}); its first call, and the '
                'first one of each new input shape or mode, take longer',
                logger='current')
            compiled = torch.compile(self._features, **self.compile_options)
            self.__dict__['_compiled'] = compiled
        return compiled

    def __getstate__(self):
        """The module's state without the compiled forward, which is bound
        to this instance: a copy (``deepcopy``, an EMA model) compiles its
        own."""
        state = dict(super().__getstate__())
        state.pop('_compiled', None)
        return state

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.downsample_layers[0]]
        for i in range(self.frozen_stages):
            frozen += [self.downsample_layers[i], self.stages[i]]
            if i in self.out_indices:
                frozen.append(getattr(self, f'norm{i}'))
        for module in frozen:
            module.eval()
        for param in chain(*(m.parameters() for m in frozen)):
            param.requires_grad = False

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """The layer-wise depth of a parameter, for mmpretrain's layer-wise
        learning-rate decay (``LearningRateDecayOptimWrapperConstructor``).

        As for mmpretrain's Swin Transformer, every block is a layer: the
        stem is depth 0, block ``j`` of stage ``i`` depth
        ``sum(depths[:i]) + j + 1``, the downsampling layer before stage
        ``i`` the depth of the block before it, and the output norms and
        everything outside the backbone (the head) the last depth.

        Args:
            param_name (str): The name of the parameter.
            prefix (str): The prefix of the backbone's parameters in
                ``param_name``. Defaults to ''.

        Returns:
            tuple[int, int]: The layer depth and the number of layers.
        """
        num_layers = sum(self.depths) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'downsample_layers':
            return sum(self.depths[:int(parts[1])]), num_layers
        if parts[0] == 'stages':
            stage, block = int(parts[1]), int(parts[2])
            return sum(self.depths[:stage]) + block + 1, num_layers
        return num_layers - 1, num_layers

    def train(self, mode=True):
        """Set train/eval mode, keeping frozen parts and BatchNorms in eval.

        Args:
            mode (bool): Training mode. Defaults to True.

        Returns:
            L2ViT: The module itself.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
