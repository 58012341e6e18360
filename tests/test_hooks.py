# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Forward hooks (feature recorders, CAM, distillation) on L2ViT's layers
see every layer called once, on the whole map, and its output unchanged:
the in-place sums, chunks and folded or bypassed layers give way."""
import torch
from torch.nn.modules.module import register_module_forward_hook

from l2vit_mm.models.layers import LGABlock, chunked_inference
from l2vit_mm.models.layers.execution_mode import hooks_within
from tests.test_backbone import small
from tests.test_parity import randomize_

WATCHED = [
    'downsample_layers.0.proj.proj.0', 'stages.0.0.cpe.0',
    'stages.0.0.cpe.0.proj', 'stages.0.0.attn', 'stages.0.0.mlp',
    'stages.0.1.attn', 'stages.0.1.local_mp', 'stages.0.1.mlp.fc1',
    'stages.0.1.mlp.fc2', 'downsample_layers.1.proj'
]


def watch(model, names):
    """Register hooks that keep each output and a copy of it."""
    seen = {name: [] for name in names}
    for name in names:
        model.get_submodule(name).register_forward_hook(
            lambda module, args, out, calls=seen[name]: calls.append(
                (out, out.detach().clone())))
    return seen


def assert_seen_once_and_unchanged(seen):
    for name, calls in seen.items():
        assert len(calls) == 1, name
        out, copy = calls[0]
        assert torch.equal(out, copy), name


def test_hooks_within_sees_submodules_and_global_hooks():
    block = LGABlock(8, 2)
    assert not hooks_within(block)
    handle = block.local_mp.bn.register_forward_pre_hook(lambda *args: None)
    assert hooks_within(block)
    handle.remove()
    # The block's own hooks see only its output, which it does not change.
    block.register_forward_hook(lambda *args: None)
    assert not hooks_within(block)
    handle = register_module_forward_hook(lambda *args: None)
    try:
        assert hooks_within(block)
    finally:
        handle.remove()
    assert not hooks_within(block)


def test_inference_with_hooks(monkeypatch):
    # Small chunks: without hooks every branch of stage 1 runs in chunks
    # and adds into the maps in place.
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 256)
    model = small(out_indices=(0, 1, 2, 3)).eval()
    randomize_(model, 0)
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        expected = model(x)
        seen = watch(model, WATCHED)
        out = model(x)
    assert_seen_once_and_unchanged(seen)
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_training_with_hooks():
    model = small(out_indices=(0, 1, 2, 3)).train()
    x = torch.randn(2, 3, 64, 80)
    results = []
    for names in ([], WATCHED[1:]):
        model.zero_grad()
        seen = watch(model, names)
        out = model(x)
        sum(o.square().mean() for o in out).backward()
        results.append((out, [p.grad.clone() for p in model.parameters()]))
    assert_seen_once_and_unchanged(seen)
    (out_a, grads_a), (out_b, grads_b) = results
    for a, b in zip(out_a + tuple(grads_a), out_b + tuple(grads_b)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
