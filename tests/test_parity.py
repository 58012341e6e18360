# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The package reproduces the authors' recorded outputs, through the
converter and the registries."""
import pytest
import torch
from l2vit_reference import ReferenceL2ViT
from mmengine.config import Config

from l2vit_mm import L2ViT
from l2vit_mm.converters import (backbone_weights, convert_l2vit,
                                 save_checkpoint_atomic)
from tests.conftest import REPO

TOL = dict(atol=1e-4, rtol=0)


def build_classifier(arch, num_classes, window_size=7):
    from mmpretrain.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(
        str(REPO / 'configs/_base_/models/l2vit/l2vit-tiny.py'))
    cfg.model.backbone.update(arch=arch, window_size=window_size)
    cfg.model.head.update(num_classes=num_classes,
                          in_channels=arch['embed_dims'][-1])
    return MODELS.build(cfg.model).eval()


def test_classifier_parity(official, official_arch):
    model = build_classifier(official_arch, official['num_classes'],
                             official['arch']['window_size'])
    converted = convert_l2vit(official['cls_state_dict'])
    model.load_state_dict(converted, strict=True)
    with torch.no_grad():
        for x, expected in zip(official['inputs'], official['cls_logits']):
            logits = model(x, mode='tensor')
            torch.testing.assert_close(logits, expected, **TOL)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_dense_parity_via_pretrained_init_cfg(official, official_arch,
                                              tmp_path, scope):
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    ckpt = tmp_path / 'converted.pth'
    save_checkpoint_atomic(
        dict(state_dict=convert_l2vit(official['det_state_dict'])), ckpt)
    backbone = registry.build(
        dict(
            type='L2ViT',
            arch=official_arch,
            window_size=official['arch']['window_size'],
            out_indices=(0, 1, 2, 3),
            init_cfg=dict(
                type='Pretrained', checkpoint=str(ckpt),
                prefix='backbone.')))
    backbone.init_weights()
    backbone.eval()
    with torch.no_grad():
        for x, expected in zip(official['inputs'], official['det_features']):
            outs = backbone(x)
            assert len(outs) == len(expected)
            for out, ref in zip(outs, expected):
                torch.testing.assert_close(out, ref, **TOL)


def test_reference_port_matches_authors(official):
    """The benchmark baseline and test oracle is faithful to the authors."""
    arch = official['arch']
    for num_classes, key, outputs in [
        (official['num_classes'], 'cls_state_dict', official['cls_logits']),
        (0, 'det_state_dict', official['det_features'])
    ]:
        ref = ReferenceL2ViT(arch['dims'], arch['depths'], arch['num_heads'],
                             arch['window_size'], num_classes).eval()
        ref.load_state_dict(official[key], strict=True)
        with torch.no_grad():
            for x, expected in zip(official['inputs'], outputs):
                got = ref(x)
                for a, b in zip(got if num_classes == 0 else [got],
                                expected if num_classes == 0 else [expected]):
                    torch.testing.assert_close(a, b, **TOL)


def randomize_(module, seed):
    """Give every parameter and BN statistic non-trivial random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                if name.endswith('running_var'):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                elif name.endswith('temperature'):
                    t.copy_(torch.rand(t.shape, generator=g))
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.2)


@pytest.mark.parametrize('window_size,num_classes,depths,size', [
    (5, 3, [2, 3, 1, 2], (50, 70)),
    (12, 21, [1, 2, 2, 3], (97, 45)),
    (3, 1000, [2, 2, 2, 2], (33, 33)),
])
def test_other_configurations_match_reference(window_size, num_classes,
                                              depths, size):
    arch = dict(embed_dims=[8, 16, 32, 64], depths=depths,
                num_heads=[1, 2, 2, 4])
    ref = ReferenceL2ViT([8, 16, 32, 64], depths, arch['num_heads'],
                         window_size, num_classes)
    randomize_(ref, window_size)
    ref.eval()
    model = build_classifier(arch, num_classes, window_size)
    model.load_state_dict(convert_l2vit(ref.state_dict()), strict=True)

    dense_ref = ReferenceL2ViT([8, 16, 32, 64], depths, arch['num_heads'],
                               window_size, 0, out_indices=(1, 3))
    dense_sd = {
        k: v
        for k, v in ref.state_dict().items()
        if not k.startswith(('norm.', 'head.'))
    }
    g = torch.Generator().manual_seed(1)
    for i in (1, 3):
        dense_sd[f'norm{i}.weight'] = torch.rand(arch['embed_dims'][i],
                                                 generator=g)
        dense_sd[f'norm{i}.bias'] = torch.randn(arch['embed_dims'][i],
                                                generator=g)
    dense_ref.load_state_dict(dense_sd, strict=True)
    dense_ref.eval()
    dense = L2ViT(arch, window_size=window_size, out_indices=(1, 3)).eval()
    dense_converted = convert_l2vit(dense_sd)
    dense.load_state_dict(backbone_weights(dense_converted), strict=True)

    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), ref(x), **TOL)
        for a, b in zip(dense(x), dense_ref(x)):
            torch.testing.assert_close(a, b, **TOL)


def test_train_step_gradients_match_reference():
    """A train-mode step (batch-statistics BN, padded windows) gives the
    reference port's gradients for the input and every parameter."""
    dims, depths, heads = [8, 16, 32, 64], [2, 2, 2, 2], [1, 2, 2, 4]
    ref = ReferenceL2ViT(dims, depths, heads, 5, 0, out_indices=(0, 1, 2, 3))
    randomize_(ref, 5)
    model = L2ViT(
        dict(embed_dims=dims, depths=depths, num_heads=heads),
        window_size=5,
        out_indices=(0, 1, 2, 3))
    model.load_state_dict(ref.state_dict(), strict=True)
    ref.train()
    model.train()
    x = torch.randn(2, 3, 50, 70)
    grads = []
    for net in (model, ref):
        inp = x.clone().requires_grad_()
        outs = net(inp)
        g = torch.Generator().manual_seed(3)
        sum((o * torch.randn(o.shape, generator=g)).sum()
            for o in outs).backward()
        grads.append({'input': inp.grad, **{
            name: p.grad for name, p in net.named_parameters()}})
    ours, theirs = grads
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(
            ours[name], theirs[name], atol=1e-4, rtol=1e-4, msg=name)


def test_float64_model_matches_reference_in_float64():
    """A float64 model computes in float64 throughout: the float32 sums of
    linear attention (for fp16/bf16 autocast) do not round it to float32."""
    dims, depths, heads = [8, 16, 32, 64], [2, 2, 2, 2], [1, 2, 2, 4]
    ref = ReferenceL2ViT(dims, depths, heads, 7, 0, out_indices=(0, 1, 2, 3))
    randomize_(ref, 7)
    model = L2ViT(
        dict(embed_dims=dims, depths=depths, num_heads=heads),
        out_indices=(0, 1, 2, 3))
    model.load_state_dict(ref.state_dict(), strict=True)
    ref, model = ref.double().eval(), model.double().eval()
    x = torch.randn(1, 3, 60, 44, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(model(x), ref(x)):
            assert a.dtype == torch.float64
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
