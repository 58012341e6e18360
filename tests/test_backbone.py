# Copyright (c) l2vit_mm contributors. All rights reserved.
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from l2vit_mm import L2ViT
from l2vit_mm.models.layers import LGABlock, LWABlock, blocks
from tests.test_depthwise_conv import conv_on_nchw
from tests.test_linear_attention import kept_storages

TINY_ARCH = dict(embed_dims=[16, 32, 64, 128], depths=[2, 2, 2, 2],
                 num_heads=[1, 2, 4, 8])


def small(**kwargs):
    kwargs.setdefault('arch', TINY_ARCH)
    model = L2ViT(**kwargs)
    model.init_weights()
    return model


@pytest.mark.parametrize('size', [(64, 96), (61, 83), (1, 1), (7, 33),
                                  (224, 224)])
def test_output_shapes_any_size(size):
    model = small(out_indices=(0, 1, 2, 3)).eval()
    H, W = size
    with torch.no_grad():
        outs = model(torch.randn(2, 3, H, W))
    assert len(outs) == 4
    h, w = H, W
    for i, (out, dims) in enumerate(zip(outs, TINY_ARCH['embed_dims'])):
        stride = 4 if i == 0 else 2
        h, w = -(-h // stride), -(-w // stride)
        assert out.shape == (2, dims, h, w)
        assert out.is_contiguous()
        assert torch.isfinite(out).all()


def test_zoo_aliases_and_block_alternation():
    assert L2ViT.parse_arch('t') == L2ViT.parse_arch('TINY')
    model = L2ViT('tiny')
    assert model.embed_dims == [96, 192, 384, 768]
    assert model.depths == [2, 2, 6, 2]
    for stage in model.stages:
        for j, block in enumerate(stage):
            assert isinstance(block, LWABlock if j % 2 == 0 else LGABlock)
    assert L2ViT('b').num_heads == [4, 8, 16, 32]
    assert L2ViT('small').depths == [2, 2, 18, 2]


def test_out_indices_negative_and_norms():
    model = small(out_indices=(-1, 1))
    assert model.out_indices == (1, 3)
    assert hasattr(model, 'norm1') and hasattr(model, 'norm3')
    assert not hasattr(model, 'norm0')
    outs = model.eval()(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [32, 128]


def test_drop_path_increases_linearly():
    model = small(drop_path_rate=0.35)
    rates = [
        float(getattr(b.drop_path, 'drop_prob', 0.)) for s in model.stages
        for b in s
    ]
    expected = torch.linspace(0, 0.35, 8).tolist()
    assert rates == pytest.approx(expected)


class DropWholeBranch(torch.nn.Module):
    """A drop path that drops every sample's branch."""

    def forward(self, x):
        return torch.zeros_like(x)


def test_drop_path_covers_every_residual_branch():
    """With every branch dropped a block is its position encodings only:
    no branch is added around its drop path."""
    model = small(drop_path_rate=0.3).train()
    torch.manual_seed(0)
    for block in (model.stages[1][0], model.stages[1][1]):
        block.drop_path = DropWholeBranch()
        x = torch.randn(2, 9, 11, 32)
        expected = x
        for cpe in block.cpe:
            expected = cpe(expected)
        torch.testing.assert_close(block(x), expected)


def test_drop_path_is_random_per_sample_in_training_only():
    model = small(drop_path_rate=0.3)
    calls = []
    for stage in model.stages:
        for block in stage:
            if hasattr(block.drop_path, 'drop_prob'):
                block.drop_path.register_forward_hook(
                    lambda module, args, out: calls.append(type(module)))
    x = torch.randn(4, 3, 32, 32)
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outs.append(model.train()(x)[0])
    # The first block's rate is 0; three LWA blocks (2 branches each) and
    # four LGA blocks (3 branches) drop paths, in three passes.
    assert len(calls) == 3 * (3 * 2 + 4 * 3)
    torch.testing.assert_close(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])
    with torch.no_grad():
        model.eval()
        torch.manual_seed(1)
        eval_out = model(x)[0]
        torch.manual_seed(2)
        torch.testing.assert_close(model(x)[0], eval_out)


@pytest.mark.parametrize('arch,match', [
    ('huge', r"Unknown L2ViT arch 'huge'.*'b', 'base', 's', 'small', 't'"),
    (dict(embed_dims=[16, 32], depths=[2, 2]), r"missing \['num_heads'\]"),
    (dict(embed_dims=[16, 32], depths=[2, 2], num_heads=[1, 2], x=1),
     r"unexpected \['x'\]"),
    (dict(embed_dims=[16, 32, 64], depths=[2, 2], num_heads=[1, 2]),
     'one entry per stage'),
    (dict(embed_dims=[16, 30], depths=[2, 2], num_heads=[1, 4]),
     'not divisible'),
    (dict(embed_dims=[16, 32], depths=[2, 0], num_heads=[1, 2]),
     'positive ints'),
    (dict(embed_dims=[16, 32], depths=[2, True], num_heads=[1, 2]),
     'positive ints'),
])
def test_bad_arch(arch, match):
    with pytest.raises(ValueError, match=match):
        L2ViT(arch)


def test_bad_arch_type():
    with pytest.raises(TypeError, match='str or a dict'):
        L2ViT(3)


@pytest.mark.parametrize('out_indices', [(4, ), (-5, ), (0, 7)])
def test_out_indices_out_of_range(out_indices):
    with pytest.raises(ValueError, match='out of range for 4 stages'):
        small(out_indices=out_indices)


def test_frozen_stages_out_of_range():
    with pytest.raises(
            ValueError,
            match=r'frozen_stages must be an int >= -1 and < 5, got 5'):
        small(frozen_stages=5)


@pytest.mark.parametrize('shape', [(3, 32, 32), (1, 4, 32, 32),
                                   (1, 1, 3, 32, 32), (1, 3, 0, 32),
                                   (2, 3, 32, 0)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError,
                       match=r'expects input of shape \(N, 3, H, W\) with H, '
                       rf'W >= 1, got \({", ".join(map(str, shape))}'):
        small()(torch.randn(*shape))


def test_one_tiny_image_in_training_names_the_batchnorm_limit():
    model = small().train()
    with pytest.raises(ValueError, match=r'L2ViT: BatchNorm in training '
                       r'mode .* input \(1, 3, 32, 20\) gives a 1x1 map'):
        model(torch.randn(1, 3, 32, 20))
    model(torch.randn(1, 3, 33, 20))
    model(torch.randn(2, 3, 32, 20))
    small(norm_eval=True).train()(torch.randn(1, 3, 32, 20))
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 32, 20))


def test_empty_batch_gives_empty_maps():
    """A batch of no images (a data loader's last, a sampler's empty
    share) gives empty maps in training and inference alike."""
    model = small(out_indices=(0, 1, 2, 3))
    x = torch.randn(0, 3, 45, 32, requires_grad=True)
    shapes = [(0, 16, 12, 8), (0, 32, 6, 4), (0, 64, 3, 2), (0, 128, 2, 1)]
    outs = model.train()(x)
    assert [out.shape for out in outs] == shapes
    sum(out.sum() for out in outs).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and not param.grad.any(), name
    with torch.no_grad():
        assert [out.shape for out in model.eval()(x)] == shapes


def test_in_channels():
    model = small(in_channels=1, out_indices=(0, )).eval()
    assert model(torch.randn(1, 1, 16, 16))[0].shape == (1, 16, 4, 4)


def test_train_returns_self_and_norm_eval():
    model = small(norm_eval=True)
    assert model.train() is model
    assert model.eval() is model
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.stages[0][0].norm1.training
    stats = [m.running_mean.clone() for m in bns]
    model(torch.randn(2, 3, 32, 32))
    assert all(torch.equal(s, m.running_mean) for s, m in zip(stats, bns))


def frozen_modules(model, frozen_stages):
    frozen = [model.downsample_layers[0]]
    for i in range(frozen_stages):
        frozen += [
            model.downsample_layers[i], model.stages[i],
            getattr(model, f'norm{i}')
        ]
    return frozen


@pytest.mark.parametrize('frozen_stages', [0, 1, 2, 4])
def test_frozen_stages(frozen_stages):
    model = small(frozen_stages=frozen_stages, out_indices=(0, 1, 2, 3))
    frozen = frozen_modules(model, frozen_stages)
    # Frozen from construction on, before any train() call (optimizers and
    # distributed wrappers may be built before it).
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    model.train()
    frozen_ids = {id(p) for m in frozen for p in m.parameters()}
    for m in frozen:
        assert not m.training
        assert all(not p.requires_grad for p in m.parameters())
    trainable = [p for p in model.parameters() if id(p) not in frozen_ids]
    assert all(p.requires_grad for p in trainable)
    if frozen_stages < 4:
        assert trainable and model.stages[frozen_stages].training
    bn = model.downsample_layers[0].proj.proj[1]
    mean = bn.running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    assert torch.equal(mean, bn.running_mean)


@pytest.mark.parametrize('kwargs, match', [
    (dict(window_size=0), 'window_size must be an int >= 1, got 0'),
    (dict(window_size=-1), 'window_size'),
    (dict(window_size=7.0), 'window_size'),
    (dict(mlp_ratio=0), 'mlp_ratio must be a number > 0, got 0'),
    (dict(mlp_ratio=0.05),
     'mlp_ratio 0.05 leaves no hidden channels in the MLPs of embed_dims 16'),
    (dict(drop_path_rate=-0.1), 'drop_path_rate must be a number >= 0'),
    (dict(drop_path_rate=1.0), 'drop_path_rate'),
    (dict(in_channels=0), 'in_channels must be an int >= 1, got 0'),
    (dict(in_channels=True), 'in_channels'),
    (dict(frozen_stages='1'), 'frozen_stages'),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L2ViT(TINY_ARCH, **kwargs)


@pytest.mark.parametrize('name', ['with_cp', 'norm_eval',
                                  'recompute_in_backward'])
@pytest.mark.parametrize('value', ['False', 0, None])
def test_flags_must_be_bools(name, value):
    with pytest.raises(TypeError,
                       match=f'L2ViT: {name} must be True or False, got '
                       f'{value!r}'):
        L2ViT(TINY_ARCH, **{name: value})


@pytest.mark.parametrize('out_indices',
                         ['0', [0, '1'], [], 1.0, True, (True, )])
def test_out_indices_must_be_ints(out_indices):
    with pytest.raises(TypeError, match='out_indices must be an int'):
        L2ViT(TINY_ARCH, out_indices=out_indices)


def test_with_cp_same_outputs_and_grads():
    torch.manual_seed(0)
    ref = small(out_indices=(0, 1, 2, 3), drop_path_rate=0.2)
    cp_model = small(out_indices=(0, 1, 2, 3), drop_path_rate=0.2,
                     with_cp=True)
    cp_model.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 45, 61)
    outs = []
    for model in (ref, cp_model):
        model.train()
        torch.manual_seed(1)
        out = model(x)
        sum(o.square().mean() for o in out).backward()
        outs.append((out, {n: p.grad for n, p in model.named_parameters()}))
    (out_a, grad_a), (out_b, grad_b) = outs
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b)
    assert grad_a.keys() == grad_b.keys()
    for name in grad_a:
        torch.testing.assert_close(grad_a[name], grad_b[name], msg=name)
    # The recomputation in backward does not update the local
    # concentration's BatchNorm statistics a second time.
    buffers = dict(cp_model.named_buffers())
    for name, buffer in ref.named_buffers():
        torch.testing.assert_close(buffers[name], buffer, msg=name)


@pytest.mark.parametrize('with_cp', [False, True])
def test_nchw_depthwise_training_same_outputs_and_grads(monkeypatch, with_cp):
    """A train step with the 7x7 depthwise convolutions on NCHW copies
    (float32 training on CUDA; the CPU stands in) gives the default path's
    outputs and gradients, the weight gradients in their parameters'
    strides (DistributedDataParallel's buckets)."""
    torch.manual_seed(0)
    ref = small(out_indices=(0, 1, 2, 3), with_cp=with_cp)
    x = torch.randn(2, 3, 45, 61)
    runs = []
    for devices in (blocks.NCHW_TRAINING_DEVICES, ('cpu', )):
        monkeypatch.setattr(blocks, 'NCHW_TRAINING_DEVICES', devices)
        ref.zero_grad(set_to_none=True)
        out = ref(x)
        sum(o.square().mean() for o in out).backward()
        runs.append((out, {n: p.grad for n, p in ref.named_parameters()}))
    (out_a, grad_a), (out_b, grad_b) = runs
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    for name, param in ref.named_parameters():
        torch.testing.assert_close(grad_a[name], grad_b[name], atol=1e-5,
                                   rtol=1e-4, msg=name)
        assert grad_b[name].stride() == param.stride(), name
    lcm_convs = [m.local_mp.conv1 for m in ref.modules()
                 if isinstance(m, LGABlock)]
    assert lcm_convs and all(
        conv_on_nchw(conv, torch.randn(1, 5, 5, conv.in_channels))[0]
        for conv in lcm_convs)


def test_with_cp_recomputes_blocks_whose_input_needs_no_gradient():
    """With the stem frozen the first block's input needs no gradient, but
    its parameters do: it is checkpointed too."""
    model = small(with_cp=True, frozen_stages=0).train()
    calls = []
    first = model.stages[0][0]
    body = first._body
    first._body = lambda *args: calls.append(1) or body(*args)
    out = model(torch.randn(2, 3, 32, 32))
    assert not model.downsample_layers[0].proj.proj[0].weight.requires_grad
    sum(o.sum() for o in out).backward()
    assert len(calls) == 2  # forward, and again in backward
    assert first.mlp.fc1.weight.grad is not None
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 3


def test_default_init_follows_authors():
    model = small()
    block = model.stages[1][1]
    assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert block.attn.qkv.bias.abs().max() == 0
    assert torch.all(block.norm1.weight == 1)
    assert torch.allclose(block.attn.temperature,
                          torch.full((2, 1, 1), 16**-0.5))
    convs = (model.downsample_layers[0].proj.proj[0],
             model.downsample_layers[1].proj, block.cpe[0].proj,
             block.local_mp.conv1)
    for conv in convs:
        assert conv.weight.std().item() == pytest.approx(0.02, rel=0.2)
        assert conv.bias.abs().max() == 0
    for norm in (model.downsample_layers[0].proj.proj[1],
                 block.local_mp.bn):
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)


def test_stem_folds_eval_batchnorm():
    """Eval-mode BatchNorms of the stem folded into its convolutions give
    the layer-by-layer result, with gradients (norm_eval fine-tuning)."""
    from l2vit_mm.models.layers import ConvPatchEmbed
    from tests.test_parity import randomize_
    stem = ConvPatchEmbed(3, 16)
    randomize_(stem, 0)
    stem.eval()
    x = torch.randn(2, 3, 30, 42)
    grads = []
    for folded in (True, False):
        out = stem(x) if folded else stem.proj(x)
        assert out.shape == (2, 16, 8, 11)
        out.square().sum().backward()
        grads.append((out.detach(), {
            n: p.grad.clone() for n, p in stem.named_parameters()}))
        stem.zero_grad()
    (folded_out, folded_grads), (plain_out, plain_grads) = grads
    assert folded_out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(folded_out, plain_out, atol=1e-4, rtol=1e-5)
    for name, grad in plain_grads.items():
        error = (folded_grads[name] - grad).abs().max() / grad.abs().max()
        assert error < 1e-5, (name, error)


def graph_node_names(tensors):
    """Names of all autograd nodes behind ``tensors``."""
    names, stack, seen = set(), [t.grad_fn for t in tensors], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_recompute_in_backward_off_keeps_more_for_the_same_results():
    torch.manual_seed(0)
    lean = small(out_indices=(0, 1, 2, 3))
    plain = small(out_indices=(0, 1, 2, 3), recompute_in_backward=False)
    plain.load_state_dict(lean.state_dict())
    x = torch.randn(2, 3, 45, 61)
    results = []
    for model in (lean, plain):
        outs = []
        kept = kept_storages(lambda: outs.append(model.train()(x)))
        out, = outs
        nodes = graph_node_names(out)
        sum(o.square().mean() for o in out).backward()
        results.append((out, {n: p.grad for n, p in model.named_parameters()},
                        nodes, sum(nbytes for nbytes, _ in kept)))
    out_a, grad_a, nodes_a, kept_a = results[0]
    out_b, grad_b, nodes_b, kept_b = results[1]
    functions = {'GeluMlpFunctionBackward', 'LinearAttentionFunctionBackward'}
    assert functions <= nodes_a and not functions & nodes_b
    assert kept_b > 1.2 * kept_a
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b)
    for name in grad_a:
        scale = grad_a[name].abs().max().item()
        torch.testing.assert_close(
            grad_a[name], grad_b[name], rtol=0, atol=1e-4 * scale, msg=name)
