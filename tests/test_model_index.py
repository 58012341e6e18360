# Copyright (c) l2vit_mm contributors. All rights reserved.
"""model-index.yml and the metafiles list every config with sound numbers."""
import glob
import os.path as osp

import yaml

from tests.conftest import REPO

#: Params (M) and FLOPs (G) of the classifier, as tests/test_complexity.py
#: measures them with mmengine's counter.
MEASURED = {
    'l2vit-tiny_8xb128-acc4_in1k': (28.60, 4.71),
    'l2vit-small_8xb128-acc4_in1k': (50.20, 9.02),
    'l2vit-base_8xb128-acc4_in1k': (88.58, 15.86),
    'l2vit-base_in21k-pre_8xb64-acc2_in1k': (88.58, 15.86),
    'l2vit-base_in21k-pre_8xb64-acc2_in1k-384px': (88.58, 47.47),
}
PUBLISHED_TOP1 = {
    'l2vit-tiny_8xb128-acc4_in1k': 83.1,
    'l2vit-small_8xb128-acc4_in1k': 84.1,
    'l2vit-base_8xb128-acc4_in1k': 84.384,
    'l2vit-base_in21k-pre_8xb64-acc2_in1k': 86.0,
    'l2vit-base_in21k-pre_8xb64-acc2_in1k-384px': 87.0,
}


def load_models():
    with open(REPO / 'model-index.yml') as f:
        index = yaml.safe_load(f)
    models = []
    for metafile in index['Import']:
        path = REPO / metafile
        assert path.is_file(), f'model-index.yml imports missing {metafile}'
        with open(path) as f:
            meta = yaml.safe_load(f)
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            assert model['In Collection'] in collections, model['Name']
            models.append(model)
    return models


def test_every_config_is_in_the_model_index():
    models = load_models()
    names = [m['Name'] for m in models]
    assert len(names) == len(set(names)), 'duplicate model names'
    listed = set()
    for model in models:
        config = model['Config']
        assert (REPO / config).is_file(), f'{model["Name"]}: no {config}'
        listed.add(config)
    experiments = {
        osp.relpath(path, REPO)
        for path in glob.glob(str(REPO / 'configs' / '**' / '*.py'),
                              recursive=True)
        if '_base_' not in path and '/demo/' not in path
    }
    assert experiments - listed == set()


def test_classification_entries_match_measurements_and_recipes():
    models = {m['Name']: m for m in load_models()}
    for name, (params, flops) in MEASURED.items():
        meta = models[name]['Metadata']
        assert meta['Parameters'] == round(params * 1e6), name
        assert meta['FLOPs'] == round(flops * 1e9), name
        metrics = models[name]['Results'][0]['Metrics']
        assert metrics['Top 1 Accuracy'] == PUBLISHED_TOP1[name]
        assert name == osp.splitext(osp.basename(models[name]['Config']))[0]
    # The 22K model: the B backbone plus a 21841-way head instead of 1000.
    in21k = models['l2vit-base_8xb128_in21k']['Metadata']
    extra_classes = 21841 - 1000
    assert in21k['Parameters'] == round(
        (88.58e6 + extra_classes * 1025) / 1e4) * 1e4
    assert in21k['FLOPs'] == round(
        (15.86e9 + extra_classes * 1024) / 1e7) * 1e7
