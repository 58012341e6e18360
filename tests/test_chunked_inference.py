# Copyright (c) l2vit_mm contributors. All rights reserved.
import pytest
import torch

from l2vit_mm import L2ViT
from l2vit_mm.models.layers import (ChannelsLastDepthwiseConv,
                                    LocalConcentration, blocks,
                                    chunked_inference)
from l2vit_mm.models.layers.chunked_inference import (image_chunks,
                                                      runs_in_chunks,
                                                      token_chunks,
                                                      window_row_chunks)
from tests.test_backbone import TINY_ARCH
from tests.test_parity import randomize_


def test_window_row_chunks_cover_whole_windows(monkeypatch):
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 3 * 7 * 20)
    x = torch.arange(2 * 25 * 20 * 3.).view(2, 25, 20, 3)
    chunks = window_row_chunks(x, window_size=7, width=3)
    # 20 tokens a row, at most 140 tokens a chunk: strips of 7 rows, the
    # last one of 4 rows (padded by the attention), for each image.
    strips = [(1, 7), (1, 7), (1, 7), (1, 4)]
    assert [c.shape[:2] for c in chunks] == strips * 2
    assert all(c.is_contiguous() for c in chunks)
    assert torch.equal(torch.cat([c.flatten() for c in chunks]), x.flatten())
    # Small images go whole, several at a time: 42 tokens, 12 an image.
    x = torch.zeros(5, 3, 4, 2)
    assert [c.shape[0] for c in window_row_chunks(x, 7, width=10)] == [3, 2]


def test_token_chunks_cover_the_map(monkeypatch):
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 64)
    x = torch.randn(2, 5, 3, 8)
    chunks = token_chunks(x, width=32)
    assert [c.shape for c in chunks] == [(2, 8)] * 15
    assert torch.equal(torch.cat(chunks), x.view(-1, 8))


def test_chunks_only_in_cpu_eager_inference(monkeypatch):
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 16)
    branch = torch.nn.Linear(4, 4).eval()
    x = torch.randn(2, 3, 3, 4)
    with torch.no_grad():
        assert runs_in_chunks(x, branch, width=4)
        assert not runs_in_chunks(x.transpose(1, 2), branch, width=4)
        assert not runs_in_chunks(x, branch.train(), width=4)
    assert not runs_in_chunks(x, branch.eval(), width=4)


def test_chunks_only_on_maps_of_more_than_two_chunks(monkeypatch):
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 6 * 16)
    branch = torch.nn.Linear(4, 4).eval()
    with torch.no_grad():
        # 16 tokens a chunk of width 6: 32 tokens go whole, 33 in chunks;
        # 19 tokens a chunk of width 5: 33 tokens go whole.
        assert not runs_in_chunks(torch.randn(2, 4, 4, 4), branch, width=6)
        assert runs_in_chunks(torch.randn(3, 11, 1, 4), branch, width=6)
        assert not runs_in_chunks(torch.randn(3, 11, 1, 4), branch, width=5)


@pytest.mark.parametrize('size', [(224, 224), (100, 132)])
def test_chunked_inference_matches_whole_maps(monkeypatch, size):
    """Tiny chunks (several strips per image, padded last strips at 100x132)
    give the outputs of the whole-map path, which runs with grad on."""
    model = L2ViT(TINY_ARCH, out_indices=(0, 1, 2, 3))
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, *size)
    whole = model(x)
    monkeypatch.setattr(chunked_inference, 'CHUNK_ELEMENTS', 16 * 3 * 7 * 8)
    split_sizes = []

    def counting(split):
        def wrapped(*args, **kwargs):
            chunks = split(*args, **kwargs)
            split_sizes.append(len(chunks))
            return chunks
        return wrapped

    monkeypatch.setattr(blocks, 'token_chunks', counting(token_chunks))
    monkeypatch.setattr(blocks, 'window_row_chunks',
                        counting(window_row_chunks))
    monkeypatch.setattr(blocks, 'image_chunks', counting(image_chunks))
    strips = []
    forward_rows = LocalConcentration.forward_rows
    monkeypatch.setattr(
        LocalConcentration, 'forward_rows',
        lambda self, *args: strips.append(args) or forward_rows(self, *args))
    inputs = []
    model.stages[0][1].register_forward_pre_hook(
        lambda module, args: inputs.append((args[0], args[0].clone())))
    with torch.no_grad():
        chunked = model(x)
    # Per stage: 2 MLP splits, 1 window split and, as every image is
    # larger than a chunk, the linear attention's two-pass path with one
    # token split per image (2); the local concentration by strips of rows
    # (several per image at stage 1) or, where whole images fit, by groups
    # of images (one more split).
    assert 4 * 5 <= len(split_sizes) <= 4 * 6 and max(split_sizes) > 8
    assert len(strips) > 2 * 4
    # A block's input (the previous block's output) is left as it was.
    assert torch.equal(*inputs[0])
    for a, b in zip(chunked, whole):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize('rows', [(0, 4), (3, 11), (6, 20), (0, 20)])
def test_local_concentration_rows_match_whole_map(rows):
    lcm = LocalConcentration(8)
    randomize_(lcm, 0)
    lcm.eval()
    x = torch.randn(2, 20, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(
            lcm.forward_rows(x, *rows), lcm(x)[:, rows[0]:rows[1]],
            rtol=0, atol=1e-5)


@pytest.mark.parametrize('rows', [(0, 4), (3, 11), (6, 20), (0, 20)])
def test_depthwise_conv_rows_match_whole_map(rows):
    conv = ChannelsLastDepthwiseConv(8, 3)
    x = torch.randn(2, 20, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(
            conv.forward_rows(x, *rows), conv(x)[:, rows[0]:rows[1]],
            rtol=0, atol=1e-5)
