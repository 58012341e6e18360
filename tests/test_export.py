# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The backbone exports to ONNX and torch.export, and runs under
torch.compile, with the outputs of eager PyTorch.

Chunks are made small, so that eager CPU inference takes its chunked paths
at these sizes while tracing and compiling must take the whole-map ones.
"""
import pytest
import torch

from l2vit_mm.models.layers import chunked_inference

OUTPUTS = [f'stage{i}' for i in range(4)]


def assert_matches(outs, refs, atol=1e-4):
    assert len(outs) == len(refs)
    for out, ref in zip(outs, refs):
        out = torch.as_tensor(out)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, atol=atol, rtol=0)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 3 * 2**10)
    stage1_map = torch.zeros(1, 56, 56, 32)
    with torch.no_grad():
        assert chunked_inference.runs_in_chunks(
            stage1_map, torch.nn.Identity().eval(), 3 * 32)


def test_onnx_opset17_dynamic_hw_matches_onnxruntime(official_backbone,
                                                     tmp_path):
    import onnx
    import onnxruntime as ort
    path = tmp_path / 'l2vit.onnx'
    torch.onnx.export(
        official_backbone, (torch.randn(1, 3, 224, 224), ),
        str(path),
        opset_version=17,
        input_names=['input'],
        output_names=OUTPUTS,
        dynamic_axes={
            'input': {0: 'batch', 2: 'height', 3: 'width'},
            **{name: {0: 'batch', 2: f'h_{name}', 3: f'w_{name}'}
               for name in OUTPUTS}
        })
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    session = ort.InferenceSession(
        str(path), providers=['CPUExecutionProvider'])
    # The export size, and one that is neither a multiple of 32 nor of the
    # window: the pads recorded in the graph must follow the input size.
    for shape in [(1, 3, 224, 224), (2, 3, 61, 83), (1, 3, 320, 448)]:
        x = torch.randn(shape)
        with torch.no_grad():
            refs = official_backbone(x)
        outs = session.run(None, {'input': x.numpy()})
        assert_matches(outs, refs)


def test_torch_export_matches(official_backbone):
    """``torch.export`` with a static input size, not a multiple of 32."""
    x = torch.randn(1, 3, 200, 300)
    program = torch.export.export(official_backbone, (x, ))
    with torch.no_grad():
        assert_matches(program.module()(x), official_backbone(x))


def test_torch_compile_matches(official_backbone):
    compiled = torch.compile(official_backbone)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert_matches(compiled(x), official_backbone(x))
