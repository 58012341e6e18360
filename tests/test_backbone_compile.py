# Copyright (c) l2vit_mm contributors. All rights reserved.
"""``L2ViT(compile=...)``: the backbone's forward through torch.compile,
same outputs, gradients and parameter names, a copy compiling its own.

The compile backend here is ``aot_eager`` (dynamo and AOT autograd without
code generation, fast on a CPU); inductor is tested in test_export.py.
"""
import copy

import pytest
import torch
from torch._dynamo.utils import counters

from l2vit_mm.models import L2ViT

ARCH = dict(embed_dims=[16, 32, 64, 128], depths=[2, 2, 2, 2],
            num_heads=[1, 2, 4, 8])
AOT_EAGER = dict(backend='aot_eager')


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """No compiled code or shapes seen carried over from another test."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def build(**kwargs):
    torch.manual_seed(0)
    return L2ViT(ARCH, window_size=4, out_indices=(0, 3), **kwargs)


def grads(model, x):
    outs = model(x)
    return outs, torch.autograd.grad(
        sum(out.square().sum() for out in outs), [x, *model.parameters()])


def test_compiled_forward_matches_eager_and_is_compiled():
    counters.clear()
    eager, compiled = build(), build(compile=AOT_EAGER)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    x = torch.randn(2, 3, 36, 28, requires_grad=True)
    outs, ref_outs = grads(compiled, x), grads(eager, x)
    assert counters['stats']['unique_graphs'] >= 1
    for got, ref in zip(outs[0] + outs[1], ref_outs[0] + ref_outs[1]):
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-3)
    compiled.eval()
    eager.eval()
    with torch.no_grad():
        for size in ((36, 28), (32, 40)):  # a second shape compiles anew
            x = torch.randn(1, 3, *size)
            for got, ref in zip(compiled(x), eager(x)):
                torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-3)


def test_copy_compiles_its_own_forward():
    model = build(compile=AOT_EAGER).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model(x)
        assert '_compiled' in model.__dict__
        # An EMA model is a deepcopy: its forward must use its weights.
        twin = copy.deepcopy(model)
        assert '_compiled' not in twin.__dict__
        for p in twin.parameters():
            p.mul_(0.5)
        ref = build().eval()
        ref.load_state_dict(twin.state_dict())
        for got, want in zip(twin(x), ref(x)):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_tracing_runs_eagerly():
    """FLOP counting and ONNX export trace the eager forward (the trace
    check, which would run the model untraced, compiled, is off)."""
    model = build(compile=AOT_EAGER).eval()
    traced = torch.jit.trace(
        model, torch.randn(1, 3, 32, 32), check_trace=False)
    assert '_compiled' not in model.__dict__
    assert len(traced(torch.randn(1, 3, 32, 32))) == 2


@pytest.mark.parametrize('value, error, match', [
    ('yes', TypeError, 'compile must be a bool or a dict'),
    (dict(modee='max-autotune'), ValueError, r"arguments \['modee'\]"),
])
def test_bad_compile_argument(value, error, match):
    with pytest.raises(error, match=match):
        build(compile=value)


def test_static_shapes_unless_asked():
    assert build(compile=True).compile_options == dict(dynamic=False)
    assert build(compile=dict(dynamic=None)).compile_options == dict(
        dynamic=None)
    assert build().compile_options is None


def test_config_dict_options_become_plain_dicts():
    from mmengine.config import ConfigDict
    model = build(compile=ConfigDict(
        mode='max-autotune-no-cudagraphs', options=dict(trace=False)))
    assert model.compile_options == dict(
        dynamic=False, mode='max-autotune-no-cudagraphs',
        options=dict(trace=False))
    assert type(model.compile_options['options']) is dict
