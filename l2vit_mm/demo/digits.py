# Copyright (c) l2vit_mm contributors. All rights reserved.
"""scikit-learn's handwritten digits as an ImageNet-style image folder."""
import os
import os.path as osp

import numpy as np
from PIL import Image

from .done_marker import (is_finished, mark_finished, remove_previous,
                          settings_text)


def load_digit_images(size):
    """Load the 1797 8x8 digits of scikit-learn, upscaled.

    Args:
        size (int): Output side in pixels.

    Returns:
        tuple[np.ndarray, np.ndarray]: uint8 images (N, size, size) and
        labels (N, ).
    """
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16. * 255).astype(np.uint8)
    resized = np.stack([
        np.asarray(Image.fromarray(img).resize((size, size),
                                               Image.BICUBIC))
        for img in images
    ])
    return resized, digits.target


def make_digits_imagenet(out_dir, size=32, val_fraction=0.2, seed=0):
    """Write the digits as ``{train,val}/<class>/<index>.png``.

    This is the folder layout of the authors' ImageNet README, read by
    mmpretrain's ``CustomDataset``/``ImageNet`` without annotation files.
    A finished data set of the same settings is left as it is, one of
    other settings is replaced (a ``.done`` marker holding the settings is
    written last, so an interrupted run is redone).

    Args:
        out_dir (str): Root folder.
        size (int): Image side. Defaults to 32.
        val_fraction (float): Share of each class held out for
            validation. Defaults to 0.2.
        seed (int): Seed of the split. Defaults to 0.

    Returns:
        dict: Number of images per split.
    """
    settings = settings_text(
        size=size, val_fraction=val_fraction, seed=seed, version=1)
    if is_finished(out_dir, settings):
        return {
            split: sum(
                len(os.listdir(osp.join(out_dir, split, c)))
                for c in os.listdir(osp.join(out_dir, split)))
            for split in ('train', 'val')
        }
    remove_previous(out_dir, ['train', 'val'])
    images, labels = load_digit_images(size)
    order = np.random.RandomState(seed).permutation(len(labels))
    counts = {'train': 0, 'val': 0}
    seen = {}
    for index in order:
        label = int(labels[index])
        seen[label] = seen.get(label, 0) + 1
        total = int((labels == label).sum())
        split = 'val' if seen[label] <= round(total * val_fraction) \
            else 'train'
        folder = osp.join(out_dir, split, f'digit_{label}')
        os.makedirs(folder, exist_ok=True)
        rgb = np.repeat(images[index][..., None], 3, axis=2)
        Image.fromarray(rgb).save(osp.join(folder, f'{index:04d}.png'))
        counts[split] += 1
    mark_finished(out_dir, settings)
    return counts
