# Copyright (c) l2vit_mm contributors. All rights reserved.
"""tools/analysis_tools/benchmark_backbones.py on small inputs."""
import json
import re
import shlex
import warnings
from types import SimpleNamespace

import benchmark_backbones
import pytest
import torch
from benchmark_backbones import (build_backbone, format_table, main,
                                 make_step, parse_args, parse_model_name,
                                 peak_memory, saved_memory)

from tests.conftest import REPO

MODELS = ['l2vit-t', 'reference-t', 'swin-t', 'convnext-t', 'l2vit-t-cp']


def test_benchmark_writes_table_plot_and_json(tmp_path, capsys):
    # Missing folders of the outputs are created.
    png = tmp_path / 'plots' / 'cpu' / 'bench.png'
    out_json = tmp_path / 'runs' / 'bench.json'
    records = main([
        '--models', *MODELS, '--sizes', '64', '48x80', '--batch', '2', '1',
        '--repeat', '2', '--warmup', '1', '--threads', '2', '--out-png',
        str(png), '--out-json',
        str(out_json)
    ])
    table = capsys.readouterr().out
    assert len(records) == len(MODELS) * 2
    for record in records:
        for mode in ('forward', 'train'):
            times = record[f'{mode}_ms']
            assert len(times['runs']) == 2
            assert 0 < times['min'] <= times['median']
            assert record[f'{mode}_peak_mb'] > 0
        assert record['train_saved_mb'] > 0
    # One table row per model and setting, L2ViT's own ratios are 1.
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert len(rows) == 1 + len(records)
    assert '| l2vit-t | 2x3x64x64 |' in table
    assert '| 1.00 / 1.00 | 1.00 / 1.00 | 1.00 | 1.00 |' in table
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert sorted(p.name for p in tmp_path.rglob('*')) == [
        'bench.json', 'bench.png', 'cpu', 'plots', 'runs'
    ]
    saved = json.loads(out_json.read_text())
    assert saved['machine']['threads'] == 2
    assert len(saved['results']) == len(records)
    # Activation checkpointing stores less for backward.
    for key in ('train_peak_mb', 'train_saved_mb'):
        mb = {(r['model'], r['height']): r[key] for r in records}
        assert mb[('l2vit-t-cp', 64)] < mb[('l2vit-t', 64)]


@pytest.mark.parametrize('options, panels', [
    (['--modes', 'train', '--no-memory'], ['train-step time, min (ms)']),
    (['--modes', 'train'],
     ['train-step time, min (ms)', 'train-step peak memory (MB)']),
    (['--modes', 'forward'],
     ['forward time, min (ms)', 'forward peak memory (MB)']),
])
def test_plot_draws_what_was_measured(tmp_path, monkeypatch, options,
                                      panels):
    """Every panel of the plot has a line per model, whatever was run."""
    import matplotlib.pyplot as plt
    figures = []
    close = plt.close
    monkeypatch.setattr(plt, 'close',
                        lambda fig: (figures.append(fig), close(fig)))
    main([
        '--models', 'l2vit-t', 'convnext-t', '--sizes', '32', '--batch', '2',
        '--repeat', '1', '--warmup', '0', '--out-png',
        str(tmp_path / 'bench.png'), *options
    ])
    axes = figures[0].axes
    assert [ax.get_ylabel() for ax in axes] == panels
    assert all(len(ax.get_lines()) == 2 for ax in axes)


def test_train_peak_memory_targets_at_224():
    """The performance issue's memory targets, as the tool measures them:
    a train step's peak no more than the authors' layers', and at least 40%
    less with ``with_cp=True`` (at 4x224: 463, 596 and 250 MB)."""
    x = torch.randn(4, 3, 224, 224)
    peaks = {}
    for name in ('l2vit-t', 'reference-t', 'l2vit-t-cp'):
        torch.manual_seed(0)
        step = make_step(build_backbone(name), x, 'train', 'fp32')
        step()
        peaks[name] = peak_memory(step, x.device)
    assert peaks['l2vit-t'] <= peaks['reference-t']
    assert peaks['l2vit-t-cp'] <= 0.6 * peaks['l2vit-t']


def test_dtype_autocasts_and_process_timer_fills_the_times(
        monkeypatch, capsys):
    # Linear layers run in bf16 in both modes; the fake clocks tell the
    # timers apart: the process clock advances 7 ms per run, the wall 3 ms.
    dtypes = set()

    def build_hooked(name):
        model = build_backbone(name)
        for layer in model.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.register_forward_hook(
                    lambda layer, args, out: dtypes.add(out.dtype))
        return model

    def clock(ms_per_run):
        ticks = iter(range(10**6))
        return lambda: next(ticks) * ms_per_run / 1e3

    monkeypatch.setattr(benchmark_backbones, 'build_backbone', build_hooked)
    monkeypatch.setattr(benchmark_backbones, 'time', SimpleNamespace(
        perf_counter=clock(3), process_time=clock(7)))
    records = main([
        '--models', 'l2vit-t', '--sizes', '32', '--batch', '2', '--repeat',
        '2', '--warmup', '0', '--dtype', 'bf16', '--timer', 'process',
        '--no-memory'
    ])
    assert dtypes == {torch.bfloat16}
    for mode in ('forward', 'train'):
        times = records[0][f'{mode}_ms']
        assert times['runs'] == pytest.approx([7, 7])
        assert times['other_timer_runs'] == pytest.approx([3, 3])
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith('bf16, ') and ', process time, ' in header


def test_time_ratios_of_min_times_and_of_runs_of_the_same_round():
    def record(model, family, forward_runs, train_peak_mb):
        return dict(
            model=model,
            family=family,
            size='tiny',
            batch=1,
            height=64,
            width=64,
            forward_ms=dict(
                min=min(forward_runs),
                median=sorted(forward_runs)[1],
                runs=forward_runs),
            train_peak_mb=train_peak_mb)

    # The other model has one lucky run: its min time makes L2ViT look 2x
    # slower, while in every other round L2ViT took half its time.
    table = format_table([
        record('l2vit-t', 'l2vit', [10., 10., 10.], 50.),
        record('reference-t', 'reference', [5., 20., 20.], 100.),
    ])
    rows = {line.split(' | ')[0]: line for line in table.splitlines()}
    assert rows['| reference-t'].endswith('| 2.00 / 0.50 | - | 0.50 | - |')
    assert rows['| l2vit-t'].endswith('| 1.00 / 1.00 | - | 1.00 | - |')


def test_peak_memory_counts_what_a_step_allocates():
    def step():
        x = torch.ones(2**20)  # 4 MiB
        y = x * 2  # 4 MiB more while x lives
        del x, y

    peak = peak_memory(step, torch.device('cpu'))
    assert 8 * 2**20 <= peak < 9 * 2**20


def test_saved_memory_counts_each_storage_once_without_parameters():
    weight = torch.nn.Parameter(torch.ones(2**10, 2**10))  # 4 MiB
    x = torch.ones(2**10, 2**10, requires_grad=True)  # 4 MiB

    def step():
        y = x.exp()  # exp keeps its output
        z = y[:2**9] * y[2**9:]  # views of y: kept, its storage once
        (z @ weight).sum().backward()  # keeps z (2 MiB) and the weight

    model = torch.nn.Module()
    model.weight = weight
    assert saved_memory(step, model) == 4 * 2**20 + 2 * 2**20


def test_models_are_the_named_backbones():
    assert parse_model_name('swin-t') == ('swin', 'tiny')
    assert parse_model_name('l2vit-base-cp') == ('l2vit-cp', 'base')
    assert type(build_backbone('reference-t')).__name__ == 'ReferenceL2ViT'
    assert build_backbone('l2vit-s').embed_dims == [96, 192, 384, 768]
    assert build_backbone('l2vit-t-cp').stages[0][0].with_cp
    assert parse_model_name('l2vit-t-norecompute') == ('l2vit-norecompute',
                                                       'tiny')
    plain = build_backbone('l2vit-t-norecompute').stages[0][1]
    assert not plain.with_cp and not plain.mlp.recompute_in_backward
    assert not plain.attn.recompute_in_backward
    assert build_backbone('l2vit-t').stages[0][1].attn.recompute_in_backward


@pytest.mark.parametrize('argv, message', [
    (['--models', 'resnet-t'], "unknown model 'resnet-t'"),
    (['--models', 'l2vit-t-fast'], "unknown model 'l2vit-t-fast'"),
    (['--models', 'swin-t-cp'], "unknown model 'swin-t-cp'"),
    (['--sizes', '0x224'], 'size must be S or HxW'),
    (['--sizes', '224', '448', '--batch', '1', '2', '3'],
     '--batch needs one value or one per size'),
    (['--batch', '0'], "expected a positive int, got '0'"),
    (['--threads', '-1'], "expected a positive int, got '-1'"),
    (['--device', 'gpu0'], "Invalid device string: 'gpu0'"),
    (['--device', 'mps'], 'mps: the tools run on cpu or cuda devices only'),
    (['--device', 'meta'], 'meta: the tools run on cpu or cuda devices'),
    (['--compile'],
     '--compile default needs --warmup >= 1: the first run compiles'),
    (['--compile', 'reduce-overhead'],
     '--compile reduce-overhead needs --warmup >= 2: the first run compiles; '
     'the second records the CUDA graphs'),
    (['--compile', 'fast'], "invalid choice: 'fast'"),
])
def test_bad_arguments_name_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as error:
        main(argv + ['--repeat', '1', '--warmup', '0'])
    assert message in str(error.value) + capsys.readouterr().err


def test_dtype_that_autocast_refuses_is_refused(monkeypatch, capsys):
    """A torch whose CPU autocast warns and turns itself off for float16
    would report float32 steps as fp16: refused before the run."""

    class WarningAutocast:

        def __init__(self, device_type, dtype):
            warnings.warn('CPU autocast only supports bfloat16; disabling')

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch, 'autocast', WarningAutocast)
    monkeypatch.setattr(benchmark_backbones, 'benchmark', None)
    with pytest.raises(SystemExit):
        main(['--dtype', 'fp16', '--models', 'l2vit-t', '--sizes', '32'])
    assert ('--dtype fp16 on cpu: CPU autocast only supports bfloat16; '
            'disabling') in capsys.readouterr().err


def test_failed_step_names_model_input_and_mode(tmp_path):
    """BatchNorm cannot train on one value per channel (1x1 at stage 4)."""
    out_json = tmp_path / 'bench.json'
    with pytest.raises(SystemExit) as error:
        main([
            '--models', 'convnext-t', 'l2vit-t', '--sizes', '32', '--batch',
            '1', '--modes', 'train', '--repeat', '1', '--warmup', '0',
            '--out-json',
            str(out_json)
        ])
    assert str(error.value).startswith(
        'error: l2vit-t at 1x3x32x32, train step: L2ViT: BatchNorm in '
        'training mode needs more than one value per channel')
    assert str(error.value).endswith('(nothing written)')
    assert not out_json.exists()


def unwritable_outputs(tmp_path):
    """(flag, path, message) of outputs the tool must refuse up front."""
    folder = tmp_path / 'a_folder'
    folder.mkdir()
    plain = tmp_path / 'a_file'
    plain.write_text('not a folder')
    return [
        ('--out-png', folder, f'cannot write --out-png {folder}: Is a '
         'directory'),
        ('--out-json', plain / 'sub' / 'bench.json',
         f'cannot write --out-json {plain}/sub/bench.json: Not a directory: '
         f'{plain}'),
        ('--out-png', tmp_path / 'bench.pgn',
         f"--out-png {tmp_path}/bench.pgn: matplotlib writes no 'pgn' "
         'images: end the name with one of '),
        ('--out-png', tmp_path / 'bench',
         f"--out-png {tmp_path}/bench: matplotlib writes no '' images"),
    ]


def test_unwritable_outputs_are_refused_before_the_run(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark_backbones, 'benchmark', None)
    for flag, path, message in unwritable_outputs(tmp_path):
        with pytest.raises(SystemExit):
            main(['--models', 'l2vit-t', '--sizes', '32', flag, str(path)])
        err = capsys.readouterr().err
        assert message in err
        assert path.suffix != '.pgn' or '.png, ' in err
    assert sorted(p.name for p in tmp_path.rglob('*')) == [
        'a_file', 'a_folder'
    ]


def test_output_where_no_file_can_be_created_is_refused(
        monkeypatch, capsys):
    # /proc takes no new files, whatever its permission bits tell root.
    monkeypatch.setattr(benchmark_backbones, 'benchmark', None)
    with pytest.raises(SystemExit):
        main(['--out-json', '/proc/l2vit/bench.json'])
    assert ('cannot write --out-json /proc/l2vit/bench.json: No such file or '
            'directory: /proc\n') in capsys.readouterr().err


def test_a_failed_plot_leaves_no_file(tmp_path, monkeypatch):
    import matplotlib.figure

    def fail_halfway(fig, path, **kwargs):
        with open(path, 'wb') as f:
            f.write(b'\x89PNG')
        raise RuntimeError('disk full')

    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', fail_halfway)
    record = dict(model='l2vit-t', batch=1, height=32, width=32,
                  forward_ms=dict(min=1.), forward_peak_mb=1.)
    with pytest.raises(RuntimeError, match='disk full'):
        benchmark_backbones.plot([record], str(tmp_path / 'bench.png'),
                                 'title')
    # Nor the folders made for it.
    (tmp_path / 'runs').mkdir()
    with pytest.raises(RuntimeError, match='disk full'):
        benchmark_backbones.plot(
            [record], str(tmp_path / 'runs' / 'cpu' / 'plots' / 'bench.png'),
            'title')
    assert [p.name for p in tmp_path.rglob('*')] == ['runs']


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='the refusal is for machines without CUDA')
def test_cuda_is_refused_without_cuda(capsys):
    with pytest.raises(SystemExit):
        main(['--device', 'cuda', '--repeat', '1'])
    assert ('argument --device: cuda: CUDA is not available'
            in capsys.readouterr().err)


def test_compile_runs_every_model_through_torch_compile(monkeypatch, capsys):
    compiled = []

    def fake_compile(model, mode):
        compiled.append((type(model).__name__, mode))
        return model

    monkeypatch.setattr(torch, 'compile', fake_compile)
    records = main([
        '--models', 'l2vit-t', 'swin-t', '--sizes', '32', '--repeat', '1',
        '--warmup', '2', '--modes', 'forward', '--no-memory', '--compile',
        'reduce-overhead'
    ])
    assert compiled == [('L2ViT', 'reduce-overhead'),
                        ('SwinTransformer', 'reduce-overhead')]
    assert len(records) == 2
    assert 'torch.compile reduce-overhead' in capsys.readouterr().out


def documented_commands():
    """The arguments of every benchmark command in the docs.

    Returns:
        list[tuple[str, list[str]]]: (where, argv) per command of README.md,
        docs/benchmark.md and the tool's docstring, continuation lines
        joined, comments cut, the shell loop's ``$d`` read as ``bf16``.
    """
    texts = {
        path: (REPO / path).read_text()
        for path in ('README.md', 'docs/benchmark.md')
    }
    texts['benchmark_backbones.__doc__'] = benchmark_backbones.__doc__
    commands = []
    for where, text in texts.items():
        for line in re.sub(r'\\\n\s*', ' ', text).splitlines():
            _, tool, args = line.partition('benchmark_backbones.py ')
            if tool and not line.lstrip().startswith(('`', '(')):
                args = args.split(' #')[0].replace('$d', 'bf16')
                commands.append((where, shlex.split(args)))
    return commands


def test_documented_commands_are_valid(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(benchmark_backbones, 'autocast_refusal',
                        lambda device, dtype: None)
    commands = documented_commands()
    assert len(commands) >= 10
    for where, argv in commands:
        try:
            parse_args(argv)
        except SystemExit:
            pytest.fail(f'{where}: benchmark_backbones.py {shlex.join(argv)}')
