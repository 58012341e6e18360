# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Classify images with an L2ViT config and checkpoint; save the drawings.

Example::

    python demo/image_demo.py path/to/image.jpg \
        configs/l2vit/l2vit-tiny_8xb128-acc4_in1k.py \
        --checkpoint checkpoints/l2vit-tiny_in1k.pth --show-dir vis/

The checkpoint is an OpenMMLab one: a training checkpoint of
``tools/train.py`` or the output of
``tools/model_converters/l2vit2mmpretrain.py``.
"""
import argparse
import json
import os
import os.path as osp
from pathlib import Path

import l2vit_mm  # noqa: F401  (registers L2ViT before the model is built)
from l2vit_mm.utils import bad_input_exits, device_name, positive_int


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('config', help='mmpretrain config of the model')
    parser.add_argument(
        '--checkpoint', required=True, help='OpenMMLab checkpoint file')
    parser.add_argument(
        '--show-dir', help='save the drawn predictions to this folder')
    parser.add_argument(
        '--device', type=device_name, default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--batch-size', type=positive_int, default=8)
    parser.add_argument(
        '--resize',
        type=positive_int,
        help='draw on the image resized to this short side (small images)')
    return parser.parse_args(argv)


def classify(images, config, checkpoint, show_dir=None, device='cpu',
             batch_size=8, resize=None):
    """Run ``mmpretrain.ImageClassificationInferencer`` on image files.

    Args:
        images (list[str]): Image paths.
        config (str): An mmpretrain config of an L2ViT classifier.
        checkpoint (str): An OpenMMLab checkpoint of that model.
        show_dir (str, optional): Folder for the drawn predictions, one PNG
            per image named after it. Defaults to None (nothing drawn).
        device (str): Torch device. Defaults to ``'cpu'``.
        batch_size (int): Images per forward. Defaults to 8.
        resize (int, optional): Short side of the drawn images. Defaults to
            None (as they are).

    Returns:
        list[dict]: ``pred_label``, ``pred_score`` and ``pred_class`` per
        image, in order.

    Raises:
        FileNotFoundError: A file is missing.
        ValueError: ``show_dir`` cannot be written, the checkpoint does
            not fit the config (e.g. the authors' checkpoint before
            conversion), or two images would be drawn to the same file
            (mmpretrain names each drawing after the image's file name,
            without folder and suffix, and replaces what follows a dot
            left in it by ``.png``).
    """
    from mmengine.config import Config
    from mmpretrain import ImageClassificationInferencer

    from l2vit_mm.utils import (check_test_checkpoint, local_checkpoint,
                                unwritable_reason)
    local = local_checkpoint(checkpoint)
    for path in [config, *([local] if local else []), *images]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'file not found: {path}')
    if show_dir:
        reason = unwritable_reason(show_dir, folder=True)
        if reason:
            raise ValueError(f'cannot draw into {show_dir}: {reason}')
        _check_drawing_names(images, show_dir)
    cfg = Config.fromfile(config)
    if cfg.get('default_scope') != 'mmpretrain':
        raise ValueError(
            f'{config} is not an mmpretrain classification config '
            f'(default_scope {cfg.get("default_scope")!r}); test detection '
            'and segmentation configs with tools/test.py --show-dir')
    # mmpretrain loads the weights non-strictly: a checkpoint that does not
    # fit the config would classify with random weights after a warning.
    check_test_checkpoint(cfg, checkpoint)
    if show_dir:
        os.makedirs(show_dir, exist_ok=True)
    inferencer = ImageClassificationInferencer(
        model=config, pretrained=checkpoint, device=device)
    results = inferencer(
        images, batch_size=batch_size, show_dir=show_dir, resize=resize)
    return [{
        'image': image,
        'pred_label': int(result['pred_label']),
        'pred_score': float(result['pred_score']),
        'pred_class': result.get('pred_class'),
    } for image, result in zip(images, results)]


def _check_drawing_names(images, show_dir):
    """Refuse images whose drawings would overwrite each other.

    Args:
        images (list[str]): Image paths.
        show_dir (str): Folder of the drawings.

    Raises:
        ValueError: Two images would be drawn to the same file.
    """
    seen = {}
    for image in images:
        # mmpretrain's name: the stem with its own last suffix replaced.
        drawing = Path(Path(image).stem).with_suffix('.png').name
        if drawing in seen:
            raise ValueError(
                f'{seen[drawing]} and {image} would both be drawn to '
                f'{osp.join(show_dir, drawing)}: pass them in separate runs '
                'or rename one')
        seen[drawing] = image


def main(argv=None):
    args = parse_args(argv)
    with bad_input_exits():
        results = classify(args.images, args.config, args.checkpoint,
                           args.show_dir, args.device, args.batch_size,
                           args.resize)
    for result in results:
        print(json.dumps(result))
    if args.show_dir:
        print(f'drawn predictions saved to {args.show_dir}')


if __name__ == '__main__':
    main()
