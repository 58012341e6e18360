# Copyright (c) l2vit_mm contributors. All rights reserved.
"""The generated digit scenes are valid COCO / ADE20K data for the real
dataset classes of mmdet and mmsegmentation, and deterministic."""
import json
import os

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from l2vit_mm.demo import (DIGIT_CLASSES, SEG_CLASSES, SEG_PALETTE,
                           make_ade_scenes, make_coco_scenes,
                           make_digits_imagenet, render_scenes)
from tests.conftest import REPO

SMALL = dict(num_train=6, num_val=3, image_size=64, max_digits=3)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    make_coco_scenes(str(root), **SMALL)
    return root


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade')
    make_ade_scenes(str(root), **SMALL)
    return root


def test_coco_annotations_are_consistent(coco_root):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    coco = COCO(str(coco_root / 'annotations' / 'instances_train.json'))
    assert len(coco.getImgIds()) == 6
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        [str(i) for i in range(10)]
    assert len(coco.getAnnIds()) >= 6  # at least one digit per scene
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = mask_utils.decode(ann['segmentation'])
        assert mask.shape == (64, 64)
        assert mask.sum() == ann['area'] > 0
        ys, xs = np.nonzero(mask)
        assert ann['bbox'] == [
            xs.min(), ys.min(), xs.max() - xs.min() + 1,
            ys.max() - ys.min() + 1
        ]
        assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= 10
        image = coco.loadImgs(ann['image_id'])[0]
        assert (coco_root / 'train' / image['file_name']).is_file()


def test_coco_scenes_load_with_mmdet_dataset(coco_root):
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    dataset = CocoDataset(
        data_root=str(coco_root),
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        metainfo=dict(classes=tuple(str(i) for i in range(10))),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ])
    assert len(dataset) == 3
    sample = dataset[0]['data_samples']
    instances = sample.gt_instances
    assert len(instances) > 0
    assert instances.masks.masks.shape[1:] == (64, 64)
    assert instances.labels.max() < 10


def test_ade_scenes_load_with_mmseg_dataset(ade_root):
    from mmengine.registry import init_default_scope
    from mmseg.datasets import BaseSegDataset
    init_default_scope('mmseg')
    dataset = BaseSegDataset(
        data_root=str(ade_root),
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        metainfo=dict(classes=SEG_CLASSES),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ])
    assert len(dataset) == 3
    label = dataset[0]['data_samples'].gt_sem_seg.data
    values = set(label.unique().tolist())
    # Background is class 0, digits 1-10, unlabelled edges 255.
    assert 0 in values and values <= set(range(11)) | {255}
    assert values & set(range(1, 11))


def test_label_png_matches_scene_masks(ade_root):
    scene = render_scenes(3, 'val', image_size=64, max_digits=3)[0]
    label = np.asarray(
        Image.open(ade_root / 'annotations' / 'validation' / '000000.png'))
    assert label.dtype == np.uint8 and label.shape == (64, 64)
    for instance in scene['instances']:
        assert (label[instance['mask']] == instance['label'] + 2).all()
    assert (label[scene['edge']] == 0).all()


def test_deterministic_and_marker(tmp_path, coco_root):
    other = tmp_path / 'again'
    counts = make_coco_scenes(str(other), **SMALL)
    for split in ('train', 'val'):
        name = f'annotations/instances_{split}.json'
        assert json.loads((other / name).read_text()) == \
            json.loads((coco_root / name).read_text())
        assert counts[split]['images'] == SMALL[f'num_{split}']
    assert (other / 'train' / '000000.jpg').read_bytes() == \
        (coco_root / 'train' / '000000.jpg').read_bytes()
    # A finished set is not rewritten; other settings regenerate it.
    stamp = os.path.getmtime(other / 'train' / '000000.jpg')
    assert make_coco_scenes(str(other), **SMALL) == counts
    assert os.path.getmtime(other / 'train' / '000000.jpg') == stamp
    changed = make_coco_scenes(str(other), **dict(SMALL, num_val=2))
    assert changed['val']['images'] == 2
    assert len(os.listdir(other / 'val')) == 2


def test_ade_scenes_of_other_settings_leave_no_old_files(tmp_path):
    make_ade_scenes(str(tmp_path), **SMALL)
    make_ade_scenes(str(tmp_path), **dict(SMALL, num_val=2))
    for folder in ('images', 'annotations'):
        assert len(os.listdir(tmp_path / folder / 'validation')) == 2


def _digit_files(root, split):
    return {
        name
        for label in os.listdir(root / split)
        for name in os.listdir(root / split / label)
    }


def test_digits_of_other_settings_replace_the_old_split(tmp_path):
    counts = make_digits_imagenet(str(tmp_path), size=8, val_fraction=0.2)
    assert counts == {'train': 1438, 'val': 359}
    stamp = os.path.getmtime(tmp_path / '.done')
    assert make_digits_imagenet(str(tmp_path), size=8,
                                val_fraction=0.2) == counts
    assert os.path.getmtime(tmp_path / '.done') == stamp
    counts = make_digits_imagenet(str(tmp_path), size=8, val_fraction=0.5)
    train, val = _digit_files(tmp_path, 'train'), _digit_files(tmp_path, 'val')
    assert not train & val
    assert len(train) + len(val) == 1797
    assert counts == {'train': len(train), 'val': len(val)}
    assert 850 < len(val) < 950


def test_train_and_val_use_different_scans():
    with pytest.raises(ValueError, match='split must be one of'):
        render_scenes(1, 'test')
    train = render_scenes(2, 'train', image_size=64)
    val = render_scenes(2, 'val', image_size=64)
    assert not np.array_equal(train[0]['image'], val[0]['image'])


def test_demo_configs_name_the_generated_classes():
    """The demo configs spell out the classes and colours that the scene
    generators write; both must stay the same."""
    demo = REPO / 'configs' / 'demo'
    det = Config.fromfile(demo / 'mask-rcnn_l2vit-demo_fpn_digit-scenes.py')
    seg = Config.fromfile(demo / 'upernet_l2vit-demo_digit-scenes.py')
    assert det.metainfo == dict(classes=DIGIT_CLASSES)
    assert det.num_classes == len(DIGIT_CLASSES)
    assert seg.metainfo == dict(classes=SEG_CLASSES, palette=SEG_PALETTE)
    assert seg.num_classes == len(SEG_CLASSES)
