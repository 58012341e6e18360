# Copyright (c) l2vit_mm contributors. All rights reserved.
import pytest
import torch

from l2vit_mm.models.layers import LWABlock, add_residual


@pytest.mark.parametrize('requires_grad', [False, True])
def test_sum_keeps_the_promoted_dtype(requires_grad):
    """A low-precision branch (autocast) added to a float32 map gives a
    float32 sum, as ``shortcut + branch``: the residual stream must not
    drop to float16/bfloat16."""
    shortcut = torch.randn(2, 3, 4, 5)
    branch = torch.randn(2, 3, 4, 5).bfloat16().requires_grad_(requires_grad)
    out = add_residual(shortcut, branch * 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, shortcut + branch.float())


def test_sum_is_written_into_a_fresh_branch_of_the_same_dtype():
    shortcut, branch = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    expected = shortcut + branch
    out = add_residual(shortcut, branch)
    assert out.data_ptr() == branch.data_ptr()
    torch.testing.assert_close(out, expected)


def test_block_keeps_a_float32_stream_in_and_out_of_training():
    """Under CUDA autocast LayerNorm runs in float32, so blocks get float32
    maps and bfloat16 branches; here the float32 input stands for that."""
    torch.manual_seed(0)
    block = LWABlock(8, 2, 4)
    x = torch.randn(2, 8, 8, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with torch.no_grad():
            inference = block(x)
        training = block(x.requires_grad_())
    assert inference.dtype == training.dtype == torch.float32
    torch.testing.assert_close(inference, training.detach())
