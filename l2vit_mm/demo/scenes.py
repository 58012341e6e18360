# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Scenes of handwritten digits on textured backgrounds, written as a COCO
instance data set and as an ADE20K-style semantic segmentation folder.

The digits are scikit-learn's 1797 8x8 scans (real handwriting), upscaled and
alpha-blended onto procedural textures (gradients, stripes, smooth noise,
checkerboards). Train and val scenes draw from disjoint digit scans, so the
validation scores measure generalisation to unseen handwriting.
"""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from .digits import load_digit_images
from .done_marker import (is_finished, mark_finished, remove_previous,
                          settings_text)

#: Class names of the detection data set (COCO category ids 1..10).
DIGIT_CLASSES = tuple(str(i) for i in range(10))
#: Class names of the segmentation data set. Label PNGs store
#: ``1 + class index`` (``0`` is "unlabelled", ignored), as ADE20K does.
SEG_CLASSES = ('background', ) + DIGIT_CLASSES
#: Colours of :data:`SEG_CLASSES` for visualisation.
SEG_PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25],
               [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
               [240, 50, 230], [210, 245, 60], [250, 190, 212]]

_SPLITS = ('train', 'val')


def _texture(rng, size):
    """Draw one RGB background texture.

    Args:
        rng (np.random.RandomState): Random state.
        size (int): Side of the square texture.

    Returns:
        np.ndarray: float32 (size, size, 3) image in [0, 1].
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.randint(4)
    if kind == 0:  # linear gradient between two colours
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        weight = t[..., None]
    elif kind == 1:  # sinusoidal stripes
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(3, 12)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        weight = (0.5 + 0.5 * np.sin(2 * np.pi * freq * t))[..., None]
    elif kind == 2:  # smooth value noise
        cells = rng.randint(3, 9)
        grid = rng.rand(cells, cells).astype(np.float32)
        noise = np.asarray(
            Image.fromarray((grid * 255).astype(np.uint8)).resize(
                (size, size), Image.BICUBIC), np.float32) / 255.
        weight = noise[..., None]
    else:  # checkerboard
        cell = rng.randint(6, 24)
        board = ((np.arange(size)[:, None] // cell +
                  np.arange(size)[None, :] // cell) % 2).astype(np.float32)
        weight = board[..., None]
    color_a = rng.uniform(0.0, 0.6, size=3).astype(np.float32)
    color_b = rng.uniform(0.0, 0.6, size=3).astype(np.float32)
    image = color_a * (1 - weight) + color_b * weight
    image += rng.normal(0, 0.02, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 1)


def _place(rng, boxes, side, size, tries=20):
    """Find a free square position for a digit.

    Args:
        rng (np.random.RandomState): Random state.
        boxes (list[tuple]): Occupied ``(x0, y0, x1, y1)`` boxes.
        side (int): Side of the digit.
        size (int): Side of the scene.
        tries (int): Attempts before giving up. Defaults to 20.

    Returns:
        tuple | None: ``(x0, y0)``, or None when no free place was found.
    """
    for _ in range(tries):
        x0, y0 = rng.randint(0, size - side + 1, size=2)
        if all(x0 >= b[2] or x0 + side <= b[0] or y0 >= b[3]
               or y0 + side <= b[1] for b in boxes):
            return int(x0), int(y0)
    return None


def render_scenes(num_images, split, image_size=128, max_digits=4,
                  digit_sizes=(28, 56), seed=0, val_fraction=0.3):
    """Render scenes of digits on textured backgrounds.

    Digits do not overlap. A pixel belongs to a digit where its ink (alpha)
    is above 0.5; pixels with ink in (0.15, 0.5] are the soft edge.

    Args:
        num_images (int): Number of scenes.
        split (str): ``'train'`` or ``'val'``: which disjoint part of the
            scikit-learn scans the digits come from.
        image_size (int): Side of the square scenes. Defaults to 128.
        max_digits (int): At most this many digits per scene (at least 1).
            Defaults to 4.
        digit_sizes (tuple[int]): Range of digit sides in pixels.
            Defaults to (28, 56).
        seed (int): Seed; the same arguments give the same scenes.
            Defaults to 0.
        val_fraction (float): Share of the scans reserved for ``'val'``.
            Defaults to 0.3.

    Returns:
        list[dict]: Per scene ``image`` (uint8 HxWx3), ``instances``
        (list of dicts with ``label`` and boolean ``mask``) and ``edge``
        (boolean mask of the soft digit edges).
    """
    if split not in _SPLITS:
        raise ValueError(f'split must be one of {list(_SPLITS)}, got '
                         f'{split!r}')
    if not 0 < digit_sizes[0] <= digit_sizes[1] <= image_size:
        raise ValueError(f'digit_sizes {digit_sizes} must lie in '
                         f'(0, image_size={image_size}]')
    scans, labels = load_digit_images(8)
    order = np.random.RandomState(seed).permutation(len(labels))
    n_val = int(round(len(labels) * val_fraction))
    pool = order[:n_val] if split == 'val' else order[n_val:]
    rng = np.random.RandomState(seed + (1 if split == 'val' else 2))
    scenes = []
    for _ in range(num_images):
        canvas = _texture(rng, image_size)
        edge = np.zeros((image_size, image_size), bool)
        boxes, instances = [], []
        for _ in range(rng.randint(1, max_digits + 1)):
            side = int(rng.randint(digit_sizes[0], digit_sizes[1] + 1))
            corner = _place(rng, boxes, side, image_size)
            if corner is None:
                continue
            x0, y0 = corner
            index = pool[rng.randint(len(pool))]
            alpha = np.asarray(
                Image.fromarray(scans[index]).resize((side, side),
                                                     Image.BICUBIC),
                np.float32) / 255.
            if (alpha > 0.5).sum() < 16:
                continue  # too faint to annotate: leave the place empty
            color = rng.uniform(0.65, 1.0, size=3).astype(np.float32)
            region = canvas[y0:y0 + side, x0:x0 + side]
            region[:] = region * (1 - alpha[..., None]) + \
                color * alpha[..., None]
            mask = np.zeros((image_size, image_size), bool)
            mask[y0:y0 + side, x0:x0 + side] = alpha > 0.5
            soft = (alpha > 0.15) & (alpha <= 0.5)
            edge[y0:y0 + side, x0:x0 + side] |= soft
            boxes.append((x0, y0, x0 + side, y0 + side))
            instances.append(dict(label=int(labels[index]), mask=mask))
        scenes.append(
            dict(
                image=(canvas * 255).round().astype(np.uint8),
                instances=instances,
                edge=edge))
    return scenes


def _scenes_settings(num_train, num_val, image_size, max_digits, seed):
    """The ``.done`` marker text of a scenes data set of these settings."""
    return settings_text(
        num_train=num_train,
        num_val=num_val,
        image_size=image_size,
        max_digits=max_digits,
        seed=seed,
        version=1)


def make_coco_scenes(out_dir, num_train=400, num_val=50, image_size=128,
                     max_digits=4, seed=0):
    """Write digit scenes as a COCO instance segmentation data set.

    Layout (as COCO 2017, read by mmdet's ``CocoDataset``)::

        out_dir/annotations/instances_train.json
        out_dir/annotations/instances_val.json
        out_dir/train/000000.jpg ...
        out_dir/val/000000.jpg ...

    Annotations have ``bbox`` (``[x, y, w, h]``), compressed-RLE
    ``segmentation``, ``area`` (mask pixels) and ``iscrowd`` 0; the ten
    categories ``'0'`` .. ``'9'`` have ids 1 .. 10. A finished data set with
    the same settings is left as it is (a ``.done`` marker is written last).

    Args:
        out_dir (str): Root folder.
        num_train (int): Training scenes. Defaults to 400.
        num_val (int): Validation scenes. Defaults to 50.
        image_size (int): Scene side. Defaults to 128.
        max_digits (int): Most digits per scene. Defaults to 4.
        seed (int): Seed. Defaults to 0.

    Returns:
        dict: Number of images and of instances per split.
    """
    from pycocotools import mask as mask_utils
    settings = _scenes_settings(num_train, num_val, image_size, max_digits,
                                seed)
    if is_finished(out_dir, settings):
        counts = {}
        for split in _SPLITS:
            with open(osp.join(out_dir, 'annotations',
                               f'instances_{split}.json')) as f:
                coco = json.load(f)
            counts[split] = dict(
                images=len(coco['images']),
                instances=len(coco['annotations']))
        return counts
    remove_previous(out_dir, ['annotations', *_SPLITS])
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    categories = [
        dict(id=i + 1, name=name, supercategory='digit')
        for i, name in enumerate(DIGIT_CLASSES)
    ]
    counts = {}
    for split, num in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        images, annotations = [], []
        scenes = render_scenes(num, split, image_size, max_digits, seed=seed)
        for image_id, scene in enumerate(scenes, 1):
            file_name = f'{image_id - 1:06d}.jpg'
            Image.fromarray(scene['image']).save(
                osp.join(out_dir, split, file_name), quality=95)
            images.append(
                dict(
                    id=image_id,
                    file_name=file_name,
                    width=image_size,
                    height=image_size))
            for instance in scene['instances']:
                mask = instance['mask']
                ys, xs = np.nonzero(mask)
                rle = mask_utils.encode(np.asfortranarray(mask, np.uint8))
                rle['counts'] = rle['counts'].decode('ascii')
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=instance['label'] + 1,
                        bbox=[
                            int(xs.min()),
                            int(ys.min()),
                            int(xs.max() - xs.min() + 1),
                            int(ys.max() - ys.min() + 1)
                        ],
                        area=int(mask.sum()),
                        segmentation=rle,
                        iscrowd=0))
        coco = dict(
            info=dict(
                description='L2ViT demo: scikit-learn digits on textures',
                version='1.0'),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=categories)
        with open(osp.join(out_dir, 'annotations',
                           f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
        counts[split] = dict(images=len(images), instances=len(annotations))
    mark_finished(out_dir, settings)
    return counts


def make_ade_scenes(out_dir, num_train=400, num_val=50, image_size=128,
                    max_digits=4, seed=0):
    """Write digit scenes as an ADE20K-style semantic segmentation folder.

    Layout (as ``ADEChallengeData2016``)::

        out_dir/images/training/000000.jpg ...
        out_dir/images/validation/000000.jpg ...
        out_dir/annotations/training/000000.png ...
        out_dir/annotations/validation/000000.png ...

    Label PNGs (8-bit, single channel) follow ADE20K: ``0`` is unlabelled
    (here the soft digit edges) and ``1 + i`` is class ``i`` of
    :data:`SEG_CLASSES` (``1`` background, ``2`` .. ``11`` digits 0-9), to
    be read with ``reduce_zero_label=True`` by mmseg's ``BaseSegDataset``
    and :data:`SEG_CLASSES` as ``metainfo``. A finished data set with the
    same settings is left as it is (a ``.done`` marker is written last).

    Args:
        out_dir (str): Root folder.
        num_train (int): Training scenes. Defaults to 400.
        num_val (int): Validation scenes. Defaults to 50.
        image_size (int): Scene side. Defaults to 128.
        max_digits (int): Most digits per scene. Defaults to 4.
        seed (int): Seed. Defaults to 0.

    Returns:
        dict: Number of images per split.
    """
    settings = _scenes_settings(num_train, num_val, image_size, max_digits,
                                seed)
    if is_finished(out_dir, settings):
        return dict(train=num_train, val=num_val)
    remove_previous(out_dir, ['images', 'annotations'])
    for split, folder, num in (('train', 'training', num_train),
                               ('val', 'validation', num_val)):
        img_dir = osp.join(out_dir, 'images', folder)
        ann_dir = osp.join(out_dir, 'annotations', folder)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        scenes = render_scenes(num, split, image_size, max_digits, seed=seed)
        for index, scene in enumerate(scenes):
            label = np.ones((image_size, image_size), np.uint8)
            label[scene['edge']] = 0
            for instance in scene['instances']:
                label[instance['mask']] = instance['label'] + 2
            Image.fromarray(scene['image']).save(
                osp.join(img_dir, f'{index:06d}.jpg'), quality=95)
            Image.fromarray(label).save(osp.join(ann_dir, f'{index:06d}.png'))
    mark_finished(out_dir, settings)
    return dict(train=num_train, val=num_val)
