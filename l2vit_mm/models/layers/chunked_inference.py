# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The chunks of CPU inference, and when a branch runs in chunks.

In eager CPU inference (:func:`runs_in_chunks`), a pre-norm residual
branch ``x + f(norm(x))`` whose ``f`` mixes tokens only inside a chunk (an
MLP: single tokens; window attention: whole rows of windows) gives the
same result chunk by chunk. Running it so keeps the wide intermediates
(the MLP's hidden layer, q/k/v) in cache instead of writing them to
freshly allocated memory and reading them back, and the sum is added into
``x`` in place (see :mod:`.residual`). Only maps of more than
:data:`WHOLE_MAP_CHUNKS` chunks run so: smaller ones gain nothing from the
cache and would pay more operator calls and smaller matmuls.
"""
from typing import List

import torch
import torch.nn as nn

from .execution_mode import eager_on_cpu

# Elements of the widest intermediate of one chunk (6 MiB in float32):
# measured on a 2-core Xeon, larger chunks lose the cache and smaller ones
# pay more operator calls.
CHUNK_ELEMENTS = 3 * 2**19
# A branch runs in chunks only on a map of more tokens than this many chunks
# hold (an intermediate of more than 12 MiB in float32): measured on the
# same CPU, L2ViT-T's later stages ran faster on whole maps (A/B in one
# process: 8x224 forward 2-3% faster with stages 3 and 4 whole, 800x1216
# 1-2% with stage 4 whole).
WHOLE_MAP_CHUNKS = 2


def runs_in_chunks(x: torch.Tensor, branch: nn.Module, width: int) -> bool:
    """Whether a residual branch may run chunk by chunk, in place.

    Only in eager CPU inference: no autograd (nothing is kept for backward),
    eval mode (drop path is the identity), a contiguous map, and neither
    tracing (FLOP counting, ONNX export) nor compiling, which want one
    graph of whole-map operators; and only on a map of more tokens than
    :data:`WHOLE_MAP_CHUNKS` chunks hold.

    Args:
        x (Tensor): The map the branch reads and adds to (..., C).
        branch (nn.Module): The branch.
        width (int): Elements per token of the branch's widest
            intermediate.

    Returns:
        bool: True when the chunked path is taken.
    """
    tokens = x.numel() // x.shape[-1]
    return (eager_on_cpu(x) and not torch.is_grad_enabled()
            and not branch.training and x.is_contiguous()
            and tokens > WHOLE_MAP_CHUNKS * tokens_per_chunk(width))


def tokens_per_chunk(width: int) -> int:
    """Tokens a chunk holds.

    Args:
        width (int): Elements per token of the widest intermediate.

    Returns:
        int: ``CHUNK_ELEMENTS // width``, at least 1.
    """
    return max(1, CHUNK_ELEMENTS // width)


def token_chunks(x: torch.Tensor, width: int) -> List[torch.Tensor]:
    """Split a map into chunks of whole tokens.

    Args:
        x (Tensor): A contiguous channels-last map (B, H, W, C), or one
            image's tokens (N, C).
        width (int): Elements per token of the widest intermediate.

    Returns:
        list[Tensor]: Views of ``x`` of shape (n, C) covering it.
    """
    return list(x.view(-1, x.shape[-1]).split(tokens_per_chunk(width)))


def image_chunks(x: torch.Tensor, width: int) -> List[torch.Tensor]:
    """Split a batch into groups of whole images.

    Args:
        x (Tensor): A contiguous channels-last map (B, H, W, C).
        width (int): Elements per token of the widest intermediate.

    Returns:
        list[Tensor]: Views of ``x`` of shape (b, H, W, C), as many images
        a group as fit the chunk size (at least one).
    """
    images = tokens_per_chunk(width) // (x.shape[1] * x.shape[2])
    return list(x.split(max(1, images)))


def window_row_chunks(x: torch.Tensor, window_size: int,
                      width: int) -> List[torch.Tensor]:
    """Split a map into chunks of whole images or whole rows of windows.

    Args:
        x (Tensor): A contiguous channels-last map (B, H, W, C).
        window_size (int): The window side; strips start at multiples of
            it, so that no window is cut.
        width (int): Elements per token of the widest intermediate.

    Returns:
        list[Tensor]: Contiguous views of ``x`` of shape (b, h, W, C)
        covering it.
    """
    _, H, W, _ = x.shape
    max_tokens = tokens_per_chunk(width)
    if H * W <= max_tokens:
        return image_chunks(x, width)
    rows = window_size * max(1, max_tokens // (window_size * W))
    return [strip for image in x.split(1) for strip in image.split(rows, 1)]
