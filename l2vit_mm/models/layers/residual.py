# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Residual branches ``x + drop_path(branch(norm(x)))`` of the blocks.

In eager CPU inference a branch that mixes tokens only inside a chunk runs
chunk by chunk and adds its result into ``x`` in place (see
:mod:`.chunked_inference`); otherwise it runs on the whole map.
"""
from typing import Callable

import torch
import torch.nn as nn

from .chunked_inference import image_chunks, runs_in_chunks, tokens_per_chunk


def add_residual(shortcut: torch.Tensor,
                 branch: torch.Tensor,
                 in_place: bool = True) -> torch.Tensor:
    """Return ``shortcut + branch``, in ``branch``'s memory when possible.

    ``branch`` must be a fresh result that autograd does not keep for
    backward (the output of a linear layer, a convolution or a drop path):
    adding in place then saves allocating and writing one more map per
    residual. A strided ``branch`` (a cropped view) is added out of place,
    so that the sum is contiguous, and so is a view that autograd records
    (a permuted convolution output in training): in place, backward would
    rebuild the gradient of its whole base through a generic strided copy.
    So is a ``branch`` of a lower precision than ``shortcut`` (a float16
    branch of a float32 map under CUDA autocast): the sum keeps the
    promoted dtype, as ``shortcut + branch`` does.

    Args:
        shortcut (Tensor): The residual input (B, H, W, C).
        branch (Tensor): The branch output of the same shape.
        in_place (bool): Whether ``branch`` may be written (False: a hook
            may hold it). Defaults to True.

    Returns:
        Tensor: The sum, contiguous when ``branch`` is.
    """
    if (in_place and branch.is_contiguous()
            and not (branch.requires_grad and branch._base is not None)
            and torch.promote_types(branch.dtype,
                                    shortcut.dtype) == branch.dtype):
        return branch.add_(shortcut)
    return shortcut + branch


def add_prenorm_branch(x: torch.Tensor,
                       norm: nn.Module,
                       branch: nn.Module,
                       drop_path: nn.Module,
                       split: Callable,
                       width: int,
                       in_place: bool = True) -> torch.Tensor:
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
        split (Callable): Maps ``x`` and ``width=width`` to views of ``x``
            covering it without overlap.
        width (int): Elements per token of the branch's widest
            intermediate.
        in_place (bool): Whether ``x`` and the branch's output may be
            written and the branch run in chunks (False: hooks watch the
            modules, see :func:`.execution_mode.hooks_within`). Defaults
            to True.

    Returns:
        Tensor: The sum, of the shape of ``x``.
    """
    if in_place and runs_in_chunks(x, branch, width):
        for chunk in split(x, width=width):
            chunk.add_(branch(norm(chunk)))
        return x
    return add_residual(x, drop_path(branch(norm(x))), in_place)


def add_local_branch(x: torch.Tensor,
                     norm: nn.Module,
                     branch: nn.Module,
                     drop_path: nn.Module,
                     width: int,
                     in_place: bool = True) -> torch.Tensor:
    """Return ``x + drop_path(branch(norm(x)))`` for a convolutional branch.

    ``branch`` mixes each row of a map only with the ``branch.halo`` rows
    above and below it, and ``branch.forward_rows(y, start, stop)`` gives
    the rows ``start:stop`` of ``branch(y)`` from ``y``'s rows around them.
    In eager CPU inference (see :func:`runs_in_chunks`) the branch runs on
    groups of whole images or, for an image larger than a chunk, on strips
    of rows that read a halo on either side; each result is added into
    ``x`` in place once the next strip's result, which reads rows of it,
    has been computed.

    Args:
        x (Tensor): A channels-last map (B, H, W, C), a block's own
            intermediate map.
        norm (nn.Module): The token-wise norm before the branch.
        branch (nn.Module): The branch, with ``halo`` and ``forward_rows``.
        drop_path (nn.Module): Drop path (or identity) on the branch.
        width (int): Elements per token of the branch's widest
            intermediate.
        in_place (bool): See :func:`add_prenorm_branch`. Defaults to True.

    Returns:
        Tensor: The sum, of the shape of ``x``.
    """
    H, W = x.shape[1:3]
    if not in_place or H * W <= tokens_per_chunk(width) or not runs_in_chunks(
            x, branch, width):
        return add_prenorm_branch(x, norm, branch, drop_path, image_chunks,
                                  width, in_place)
    halo = branch.halo
    rows = max(halo, tokens_per_chunk(width) // W)
    for image in x.split(1):
        # A strip's result is added only once the next strip's result,
        # which reads rows of it (``rows >= halo``), has been computed.
        done = None
        for start in range(0, H, rows):
            stop = min(H, start + rows)
            lo = max(0, start - halo)
            normed = norm(image[:, lo:min(H, stop + halo)])
            result = branch.forward_rows(normed, start - lo, stop - lo)
            if done is not None:
                done[0].add_(done[1])
            done = image[:, start:stop], result
        done[0].add_(done[1])
    return x
