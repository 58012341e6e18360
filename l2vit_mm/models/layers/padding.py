# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Zero padding of maps up to a multiple of a window or stride."""
import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor,
                    multiple: int,
                    channels_last: bool = False) -> torch.Tensor:
    """Zero-pad a map on the right/bottom to a multiple of ``multiple``.

    Args:
        x (Tensor): A map of shape (B, C, H, W), or (B, H, W, C) when
            ``channels_last``.
        multiple (int): The size H and W are padded up to a multiple of.
        channels_last (bool): Whether ``x`` is channels-last.
            Defaults to False.

    Returns:
        Tensor: The padded map, or ``x`` itself when no padding is needed
        (when traced, the pad is always recorded, with amounts computed
        from the traced size, so that an exported graph fits every size).
    """
    H, W = x.shape[1:3] if channels_last else x.shape[2:4]
    pad_h, pad_w = -H % multiple, -W % multiple
    if torch.jit.is_tracing() or pad_h or pad_w:
        pad = (0, pad_w, 0, pad_h)
        x = F.pad(x, (0, 0) + pad if channels_last else pad)
    return x
