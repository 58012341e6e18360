# Copyright (c) l2vit_mm contributors. All rights reserved.
"""DetInferencer / MMSegInferencer with the L2ViT configs, and correct shapes
for inputs whose sides are not multiples of 32."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import l2vit_mm  # noqa: F401 (registers L2ViT)
from l2vit_mm.demo import DIGIT_CLASSES, SEG_CLASSES, SEG_PALETTE
from tests.conftest import REPO

DEMO_DET = REPO / 'configs' / 'demo' / \
    'mask-rcnn_l2vit-demo_fpn_digit-scenes.py'
DEMO_SEG = REPO / 'configs' / 'demo' / 'upernet_l2vit-demo_digit-scenes.py'
# Height x width, none a multiple of 32 (nor of the window size 4).
SHAPES = [(75, 101), (61, 90)]


def images():
    rng = np.random.RandomState(0)
    return [rng.randint(0, 255, (h, w, 3), dtype=np.uint8) for h, w in SHAPES]


def untrained_checkpoint(config, scope, dataset_meta, path):
    """Save the initial weights of a config's model with its classes."""
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    torch.save(
        dict(state_dict=model.state_dict(),
             meta=dict(dataset_meta=dataset_meta)), path)
    return str(path)


def test_det_inferencer_pads_and_restores_shapes(tmp_path):
    from mmdet.apis import DetInferencer
    weights = untrained_checkpoint(
        DEMO_DET, 'mmdet', dict(classes=DIGIT_CLASSES), tmp_path / 'det.pth')
    inferencer = DetInferencer(
        model=str(DEMO_DET), weights=weights, device='cpu')
    assert inferencer.model.dataset_meta['classes'] == DIGIT_CLASSES
    # One batch of two sizes: the test pipeline resizes the short side to
    # 128, the data preprocessor pads both to the same multiple of 32.
    data = inferencer.preprocess(images(), batch_size=2)
    _, batch = next(iter(data))
    resized = [s.img_shape for s in batch['data_samples']]
    assert len(set(resized)) == 2 and all(128 in r for r in resized)
    padded = inferencer.model.data_preprocessor(batch, False)
    pad_h, pad_w = (-(-max(r[i] for r in resized) // 32) * 32
                    for i in (0, 1))
    assert padded['inputs'].shape[-2:] == (pad_h, pad_w)
    for sample in padded['data_samples']:
        assert sample.batch_input_shape == (pad_h, pad_w)
    features = inferencer.model.extract_feat(padded['inputs'])
    assert [tuple(f.shape[-2:]) for f in features] == [
        (-(-pad_h // s), -(-pad_w // s)) for s in (4, 8, 16, 32, 64)
    ]
    results = inferencer(
        images(), batch_size=2, out_dir=str(tmp_path / 'out'),
        return_datasamples=True)
    for sample, (h, w) in zip(results['predictions'], SHAPES):
        instances = sample.pred_instances
        assert sample.ori_shape == (h, w)
        assert instances.masks.shape[1:] == (h, w)
        boxes = instances.bboxes
        assert (boxes[:, 2] <= w + 1e-3).all()
        assert (boxes[:, 3] <= h + 1e-3).all()
    assert len(list((tmp_path / 'out' / 'vis').glob('*.jpg'))) == 2


@pytest.mark.parametrize(
    'test_cfg',
    [dict(mode='whole'),
     dict(mode='slide', crop_size=(64, 64), stride=(48, 48))])
def test_seg_inferencer_whole_and_slide_shapes(test_cfg, tmp_path):
    from mmseg.apis import MMSegInferencer
    weights = untrained_checkpoint(
        DEMO_SEG, 'mmseg', dict(classes=SEG_CLASSES, palette=SEG_PALETTE),
        tmp_path / 'seg.pth')
    cfg = Config.fromfile(DEMO_SEG)
    cfg.model.test_cfg = test_cfg
    inferencer = MMSegInferencer(model=cfg, weights=weights, device='cpu')
    assert inferencer.model.dataset_meta['classes'] == SEG_CLASSES
    results = inferencer(
        images(), batch_size=1, out_dir=str(tmp_path / 'out'),
        return_datasamples=True)
    for sample, shape in zip(results, SHAPES):
        assert tuple(sample.pred_sem_seg.data.shape) == (1, *shape)
        assert sample.seg_logits.data.shape == (len(SEG_CLASSES), *shape)
    assert len(list((tmp_path / 'out' / 'vis').glob('*.jpg'))) == 2
