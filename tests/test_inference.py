# Copyright (c) l2vit_mm contributors. All rights reserved.
"""mmpretrain inference (inferencer, get_model, inference_model) with an
L2ViT config and the authors' weights converted by our converter."""
import os
import subprocess
import sys

import pytest
import torch

from l2vit_mm.demo import make_digits_imagenet
from tests.conftest import REPO

IMAGE_DEMO = REPO / 'demo' / 'image_demo.py'


@pytest.fixture(scope='module')
def converted(official, official_arch, tmp_path_factory):
    """A config of the fixture's model and its converted checkpoint."""
    root = tmp_path_factory.mktemp('inference')
    authors = root / 'authors.pth'
    torch.save({'model': official['cls_state_dict']}, authors)
    checkpoint = root / 'converted.pth'
    result = subprocess.run([
        sys.executable,
        str(REPO / 'tools/model_converters/l2vit2mmpretrain.py'),
        str(authors), str(checkpoint)
    ], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    config = root / 'l2vit-official-small.py'
    config.write_text(
        f"_base_ = ['{REPO}/configs/demo/l2vit-demo_digits.py']\n"
        'model = dict(\n'
        f"    backbone=dict(arch={official_arch!r}, window_size="
        f"{official['arch']['window_size']}),\n"
        f"    head=dict(num_classes={official['num_classes']}, "
        f"in_channels={official_arch['embed_dims'][-1]}))\n")
    images = root / 'digits'
    make_digits_imagenet(str(images))
    return config, checkpoint, sorted((images / 'val').glob('*/*.png'))[:3]


def test_get_model_and_inferencer(converted, official):
    from mmpretrain import ImageClassificationInferencer, get_model
    config, checkpoint, images = converted
    model = get_model(str(config), pretrained=str(checkpoint))
    name = 'backbone.stages.0.0.attn.qkv.weight'
    authors = official['cls_state_dict']['stages.0.0.attn.qkv.weight']
    torch.testing.assert_close(model.state_dict()[name], authors)
    inferencer = ImageClassificationInferencer(model)
    result, = inferencer(str(images[0]))
    assert result['pred_scores'].shape == (official['num_classes'], )
    assert abs(float(result['pred_scores'].sum()) - 1) < 1e-4


def test_image_demo_saves_drawn_predictions(converted, tmp_path):
    config, checkpoint, images = converted
    show_dir = tmp_path / 'vis'
    result = subprocess.run([
        sys.executable,
        str(IMAGE_DEMO), *map(str, images),
        str(config), '--checkpoint',
        str(checkpoint), '--show-dir',
        str(show_dir)
    ], capture_output=True, text=True, cwd=str(REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if '"pred_label"'
             in line]
    assert len(lines) == len(images)
    assert sorted(p.stem for p in show_dir.glob('*.png')) == sorted(
        p.stem for p in images)


def run_image_demo(image, config, checkpoint):
    return subprocess.run([
        sys.executable,
        str(IMAGE_DEMO),
        str(image),
        str(config), '--checkpoint',
        str(checkpoint)
    ], capture_output=True, text=True, cwd=str(REPO))


def test_image_demo_refuses_other_task_configs(converted, tmp_path):
    _, checkpoint, images = converted
    config = REPO / 'configs' / 'demo' / 'upernet_l2vit-demo_digit-scenes.py'
    result = run_image_demo(images[0], config, checkpoint)
    assert result.returncode != 0
    assert (f'{config} is not an mmpretrain classification config '
            "(default_scope 'mmseg'); test detection and segmentation "
            'configs with tools/test.py --show-dir') in result.stderr


def test_image_demo_expands_home_in_the_checkpoint(converted, tmp_path):
    config, checkpoint, images = converted
    home_copy = tmp_path / 'home' / 'converted.pth'
    home_copy.parent.mkdir()
    home_copy.write_bytes(checkpoint.read_bytes())
    result = subprocess.run([
        sys.executable, str(IMAGE_DEMO), str(images[0]), str(config),
        '--checkpoint', '~/converted.pth'
    ], capture_output=True, text=True, cwd=str(REPO),
        env=dict(os.environ, HOME=str(tmp_path / 'home')))
    assert result.returncode == 0, result.stderr[-2000:]


def test_image_demo_names_a_missing_checkpoint(converted, tmp_path):
    config, _, images = converted
    missing = tmp_path / 'nope.pth'
    result = run_image_demo(images[0], config, missing)
    assert result.returncode != 0
    assert f'file not found: {missing}' in result.stderr


def test_model_hub_knows_l2vit_names(converted):
    from mmpretrain import get_model, inference_model

    from l2vit_mm.apis import register_l2vit_models
    names = register_l2vit_models()
    assert 'l2vit-tiny_8xb128-acc4_in1k' in names
    assert 'l2vit-base_in21k-pre_8xb64-acc2_in1k-384px' in names
    assert register_l2vit_models() == names  # idempotent
    model = get_model('l2vit-tiny_8xb128-acc4_in1k')
    assert type(model.backbone).__name__ == 'L2ViT'
    assert model.backbone.embed_dims == [96, 192, 384, 768]
    # inference_model picks the inferencer from the metafile's task.
    result = inference_model(model, str(converted[2][0]))
    assert result['pred_scores'].shape == (1000, )


def test_dense_demo_lists_drawn_jpg_and_png(tmp_path):
    dense_demo = load_demo('dense_demo')
    (tmp_path / 'det').mkdir()
    (tmp_path / 'seg' / 'vis_data' / 'vis_image').mkdir(parents=True)
    for name in ('det/000001.jpg', 'det/000000.jpg',
                 'seg/vis_data/vis_image/000000.png', 'det/notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert dense_demo.drawn_predictions(str(tmp_path / 'det')) == [
        str(tmp_path / 'det' / '000000.jpg'),
        str(tmp_path / 'det' / '000001.jpg')
    ]
    assert dense_demo.drawn_predictions(str(tmp_path), count=1) == [
        str(tmp_path / 'det' / '000000.jpg')
    ]
    assert dense_demo.drawn_predictions(str(tmp_path / 'seg')) == [
        str(tmp_path / 'seg' / 'vis_data' / 'vis_image' / '000000.png')
    ]


def test_image_demo_refuses_an_unconverted_checkpoint(converted, tmp_path):
    config, checkpoint, images = converted
    authors = checkpoint.parent / 'authors.pth'
    result = run_image_demo(images[0], config, authors)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'error: checkpoint: {authors} has no "backbone." keys, so it would '
        'load nothing into the model; convert the authors\' checkpoint with '
        'tools/model_converters/l2vit2mmpretrain.py')
    assert '"pred_label"' not in result.stdout


def load_demo(name):
    """Import ``demo/<name>.py`` as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        name, REPO / 'demo' / f'{name}.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


@pytest.mark.parametrize('first, second, drawing', [
    ('a/cat.jpg', 'b/cat.png', 'cat.png'),
    # mmpretrain draws scan.v1.jpg to scan.png (Path.with_suffix).
    ('a/scan.v1.jpg', 'b/scan.v2.jpg', 'scan.png'),
])
def test_image_demo_refuses_images_drawn_to_the_same_file(
        first, second, drawing, tmp_path):
    image_demo = load_demo('image_demo')
    for name in (first, second, 'config.py', 'model.pth'):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b'')
    with pytest.raises(SystemExit) as error:
        image_demo.main([
            str(tmp_path / first),
            str(tmp_path / second),
            str(tmp_path / 'config.py'), '--checkpoint',
            str(tmp_path / 'model.pth'), '--show-dir',
            str(tmp_path / 'vis')
        ])
    assert str(error.value) == (
        f'error: {tmp_path}/{first} and {tmp_path}/{second} would both be '
        f'drawn to {tmp_path}/vis/{drawing}: pass them in separate runs or '
        'rename one')
    assert not (tmp_path / 'vis').exists()


def test_image_demo_refuses_a_show_dir_in_the_way(tmp_path):
    image_demo = load_demo('image_demo')
    for name in ('cat.jpg', 'config.py', 'model.pth', 'vis'):
        (tmp_path / name).write_bytes(b'')
    with pytest.raises(SystemExit) as error:
        image_demo.main([
            str(tmp_path / 'cat.jpg'),
            str(tmp_path / 'config.py'), '--checkpoint',
            str(tmp_path / 'model.pth'), '--show-dir',
            str(tmp_path / 'vis' / 'run1')
        ])
    assert str(error.value) == (
        f'error: cannot draw into {tmp_path}/vis/run1: Not a directory: '
        f'{tmp_path}/vis')


@pytest.mark.parametrize('device, message', [
    ('gpu0', "argument --device: Invalid device string: 'gpu0'"),
    ('cuda:99', 'argument --device: cuda:99: ' + (
        'this machine has' if torch.cuda.is_available() else
        'CUDA is not available')),
])
def test_image_demo_refuses_a_device_it_cannot_run_on(device, message,
                                                      capsys):
    with pytest.raises(SystemExit) as error:
        load_demo('image_demo').parse_args(
            ['cat.jpg', 'config.py', '--checkpoint', 'model.pth', '--device',
             device])
    assert error.value.code == 2
    assert message in capsys.readouterr().err


def test_dense_demo_refuses_an_override_without_value(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        load_demo('dense_demo').main(
            ['--out-dir', str(tmp_path / 'out'), '--cfg-options',
             'train_cfg.max_epochs'])
    assert error.value.code == 2
    assert ("argument --cfg-options: expected KEY=VALUE, got "
            "'train_cfg.max_epochs'") in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_demos_name_a_failed_script(capsys):
    from l2vit_mm.demo.run_script import run_script
    with pytest.raises(SystemExit) as error:
        run_script(str(REPO), 'tools/train.py', REPO / 'nope.py')
    assert str(error.value) == ('error: tools/train.py failed (exit status '
                                '1); its output is above')
    assert capsys.readouterr().out.startswith(
        '$ python tools/train.py nope.py\n')
