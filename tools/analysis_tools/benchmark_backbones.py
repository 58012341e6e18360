# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Benchmark L2ViT against Swin, ConvNeXt and a straightforward port.

Measures, for every model and input setting, the latency of a forward pass
(``torch.no_grad``, eval mode) and of a train step (forward + backward of
the sum of the outputs' means, train mode; no optimizer), as min and median
over ``--repeat`` runs after ``--warmup`` runs, and the peak memory of each.
Runs of different models are interleaved (model order rotated every
repeat), so that load from other processes spreads over all of them alike:
compare ratios taken in one run, not absolute times of different runs. The
table gives each time ratio twice, of the min times and paired (the median
of the ratios of runs of the same repeat).

Peak memory is the largest amount of memory allocated at any moment of the
step above what was allocated when it started (weights, input, and for a
train step the previous step's gradients, which it frees first and
allocates again in backward: its peak is net of the gradients' own memory,
for every model alike): on CUDA from
``torch.cuda.max_memory_allocated``; on CPU from the allocation and free
events of every tensor that the PyTorch profiler records with
``profile_memory=True`` (all allocations through PyTorch's CPU allocator,
including kernels' workspaces), summed in time order. The profiled run is a
separate, untimed run. A train step also reports the memory that autograd
keeps for backward (each storage of a tensor saved for backward once,
parameters excluded): the activations that dominate training memory,
counted alike on every device, so that an fp32 CPU run tells what a model
keeps on a GPU too (eager mode only; autocast casts different operators
on the CPU and on CUDA).

Models (``family-size``, size ``t``/``s``/``b``): ``l2vit`` (this package),
``reference`` (``l2vit_reference.py``: the authors' layers ported as they
are, the baseline of the speed-up), ``swin`` and ``convnext``
(mmpretrain's ``SwinTransformer`` and ``ConvNeXt``); L2ViT's variants
``l2vit-SIZE-cp`` (``with_cp=True``) and ``l2vit-SIZE-norecompute``
(``recompute_in_backward=False``). All return the maps of the four stages
(``out_indices=(0, 1, 2, 3)``) with drop path off.

Examples::

    # the CPU table of docs/benchmark.md
    python tools/analysis_tools/benchmark_backbones.py --threads 2 \\
        --sizes 224 800x1216 --batch 8 1 --repeat 7 \\
        --out-png docs/benchmark_cpu.png --out-json bench_cpu.json
    # a GPU, mixed precision
    python tools/analysis_tools/benchmark_backbones.py --device cuda \\
        --dtype bf16 --sizes 224 800x1216 --batch 64 1
    # the same through torch.compile (the warm-up runs compile)
    python tools/analysis_tools/benchmark_backbones.py --device cuda \\
        --dtype bf16 --sizes 224 --batch 64 --models l2vit-t --compile
"""
import argparse
import json
import os.path as osp
import platform
import statistics
import sys
import time
import warnings
from contextlib import nullcontext

import torch

from l2vit_mm.utils import (device_name, positive_int, unwritable_reason,
                            write_atomic)

FAMILIES = ('l2vit', 'reference', 'swin', 'convnext')
SIZE_NAMES = {'t': 'tiny', 's': 'small', 'b': 'base'}
DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
MODES = ('forward', 'train')
OUT_INDICES = (0, 1, 2, 3)
L2VIT_VARIANTS = {
    'cp': dict(with_cp=True),
    'norecompute': dict(recompute_in_backward=False)
}


def parse_model_name(name):
    """Split a model name such as ``'swin-t'`` into family and size.

    Args:
        name (str): ``family-size`` with a family of :data:`FAMILIES` and a
            size of ``t``, ``s``, ``b`` (or ``tiny``, ``small``, ``base``);
            ``l2vit-SIZE-VARIANT`` is L2ViT with the arguments of
            :data:`L2VIT_VARIANTS` ``[VARIANT]``.

    Returns:
        tuple[str, str]: The family (``'l2vit-VARIANT'`` for a variant) and
        the full size name, e.g. ``('swin', 'tiny')``.
    """
    family, _, size = name.lower().partition('-')
    size, _, variant = size.partition('-')
    size = SIZE_NAMES.get(size, size)
    if (family not in FAMILIES or size not in SIZE_NAMES.values()
            or variant and (family != 'l2vit'
                            or variant not in L2VIT_VARIANTS)):
        raise argparse.ArgumentTypeError(
            f'unknown model {name!r}: use family-size with family in '
            f'{FAMILIES} and size in {sorted(SIZE_NAMES)}, or '
            f'l2vit-SIZE-VARIANT with VARIANT in {sorted(L2VIT_VARIANTS)}')
    return f'{family}-{variant}' if variant else family, size


def build_backbone(name):
    """Build a backbone that returns the maps of its four stages.

    Args:
        name (str): A model name, see :func:`parse_model_name`.

    Returns:
        torch.nn.Module: The backbone (random weights).
    """
    family, size = parse_model_name(name)
    if family.startswith('l2vit'):
        from l2vit_mm import L2ViT
        variant = family.partition('-')[2]
        return L2ViT(
            size, out_indices=OUT_INDICES, **L2VIT_VARIANTS.get(variant, {}))
    if family == 'reference':
        from l2vit_mm import L2ViT
        arch = L2ViT.parse_arch(size)
        from l2vit_reference import ReferenceL2ViT
        return ReferenceL2ViT(
            arch['embed_dims'],
            arch['depths'],
            arch['num_heads'],
            num_classes=0,
            out_indices=OUT_INDICES)
    from mmpretrain.models import ConvNeXt, SwinTransformer
    if family == 'swin':
        # pad_small_map: maps smaller than a window (small inputs) are
        # padded as L2ViT pads them, instead of refused.
        return SwinTransformer(
            arch=size,
            out_indices=OUT_INDICES,
            drop_path_rate=0.,
            pad_small_map=True)
    return ConvNeXt(
        arch=size,
        out_indices=OUT_INDICES,
        drop_path_rate=0.,
        gap_before_final_norm=False)


def parse_size(text):
    """Parse ``'224'`` or ``'800x1216'`` (H x W) into ``(H, W)``.

    Args:
        text (str): The size.

    Returns:
        tuple[int, int]: Height and width.
    """
    try:
        parts = [int(p) for p in text.lower().split('x')]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts, default=0) < 1:
        raise argparse.ArgumentTypeError(
            f'size must be S or HxW with positive ints, got {text!r}')
    return (parts[0], parts[-1])


def settings_of(sizes, batches):
    """Pair input sizes with batch sizes.

    Args:
        sizes (list[tuple[int, int]]): Input sizes (H, W).
        batches (list[int]): One batch size for all sizes, or one per size.

    Returns:
        list[tuple[int, int, int]]: ``(batch, H, W)`` settings.
    """
    if len(batches) == 1:
        batches = batches * len(sizes)
    if len(batches) != len(sizes):
        raise ValueError(
            f'--batch needs one value or one per size ({len(sizes)}), got '
            f'{len(batches)}')
    return [(b, h, w) for b, (h, w) in zip(batches, sizes)]


def _synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _autocast(device, dtype):
    if DTYPES[dtype] is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def autocast_refusal(device, dtype):
    """Why autocast would not run ``dtype`` on ``device``, if it would not.

    Older torch versions warn and disable CPU autocast for float16 (only
    bfloat16 was supported): the steps would then run and be reported in
    float32.

    Args:
        device (str): The device name.
        dtype (str): A key of ``DTYPES``.

    Returns:
        str | None: torch's error or warning, None when autocast runs it.
    """
    if DTYPES[dtype] is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            with torch.autocast(
                    device_type=torch.device(device).type,
                    dtype=DTYPES[dtype]):
                pass
    except (RuntimeError, UserWarning) as error:
        return str(error)
    return None


def make_step(model, x, mode, dtype):
    """Make a closure that runs one forward pass or one train step.

    Args:
        model (torch.nn.Module): The backbone.
        x (Tensor): The input batch.
        mode (str): ``'forward'`` (no grad, eval mode) or ``'train'``
            (forward + backward, train mode, gradients reset first).
        dtype (str): ``'fp32'``, or ``'bf16'``/``'fp16'`` for autocast.

    Returns:
        callable: The step; it takes no arguments.
    """
    params = [p for p in model.parameters() if p.requires_grad]

    def forward():
        with torch.no_grad(), _autocast(x.device, dtype):
            model(x)

    def train():
        for p in params:
            p.grad = None
        with _autocast(x.device, dtype):
            outs = model(x)
        sum(out.float().mean() for out in outs).backward()

    def run():
        # mmpretrain's Swin/ConvNeXt.train() return None: no chaining.
        model.train(mode == 'train')
        (train if mode == 'train' else forward)()
        _synchronize(x.device)

    return run


class StepError(RuntimeError):
    """A model failed to run one of the benchmark's steps."""


def named_step(step, what):
    """Wrap a step so that its failure names the model, input and mode.

    Args:
        step (callable): A step of :func:`make_step`.
        what (str): E.g. ``'l2vit-t at 1x3x32x32, train step'``.

    Returns:
        callable: The step, raising :class:`StepError` with ``what`` and
        the cause (an input too small for a model, memory running out, ...).
    """

    def run():
        try:
            step()
        except (RuntimeError, ValueError) as error:
            raise StepError(f'{what}: {error}') from error

    return run


def peak_memory(step, device):
    """Measure the peak memory a step allocates above its starting point.

    Args:
        step (callable): A step of :func:`make_step` (already warmed up).
        device (torch.device): Where it runs.

    Returns:
        int: Peak bytes allocated at any moment of the step, minus the
        bytes allocated when it started.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        return torch.cuda.max_memory_allocated(device) - start
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        step()
    events = sorted((e.start_ns(), e.nbytes())
                    for e in prof.profiler.kineto_results.events()
                    if e.name() == '[memory]'
                    and e.device_type().name == 'CPU')
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def saved_memory(step, model):
    """Measure the memory that autograd keeps for the backward of a step.

    Args:
        step (callable): A train step of :func:`make_step`.
        model (torch.nn.Module): Its model, whose parameters do not count.

    Returns:
        int: Bytes of the storages of all tensors saved for backward during
        the step (each storage once, however many tensors view it), but
        the parameters'. What activation checkpointing keeps to recompute
        a block (its input) is not a saved tensor and is not counted.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(kept.values())


def benchmark(models, settings, modes=MODES, dtype='fp32', device='cpu',
              repeat=5, warmup=2, memory=True, timer='wall', compile_mode=None,
              log=print):
    """Time and measure models, interleaving their runs.

    Args:
        models (list[str]): Model names, see :func:`parse_model_name`.
        settings (list[tuple[int, int, int]]): ``(batch, H, W)`` inputs.
        modes (Sequence[str]): Subset of ``('forward', 'train')``.
        dtype (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (autocast).
        device (str): ``'cpu'`` or a CUDA device.
        repeat (int): Timed runs per model, mode and setting.
        warmup (int): Untimed runs before them.
        memory (bool): Also measure peak memory, and for train steps in
            eager mode the memory kept for backward. Defaults to True.
        timer (str): ``'wall'`` (elapsed time) or ``'process'`` (CPU time
            of this process, all threads: on a CPU shared with other jobs
            it does not count the time spent waiting for a core).
            Defaults to ``'wall'``.
        compile_mode (str, optional): Run every model through
            ``torch.compile`` with this mode (``'default'``,
            ``'reduce-overhead'``, ``'max-autotune'``); the warm-up runs
            compile (at least one is needed; two with ``'reduce-overhead'``,
            whose second run records the CUDA graphs).
            Defaults to None (eager).
        log (callable): Progress printer. Defaults to :func:`print`.

    Raises:
        StepError: A model failed a step; nothing is returned.

    Returns:
        list[dict]: One record per model and setting with the keys
        ``model``, ``family``, ``size``, ``batch``, ``height``, ``width``,
        ``params`` and, per mode, ``{mode}_ms`` (dict of ``min``,
        ``median``, all ``runs`` and the runs by the other timer in
        ``other_timer_runs``), ``{mode}_peak_mb`` and ``train_saved_mb``.
    """
    device = torch.device(device)
    built = {name: build_backbone(name).to(device) for name in models}
    if compile_mode:
        built = {
            name: torch.compile(model, mode=compile_mode)
            for name, model in built.items()
        }
    records = []
    for batch, height, width in settings:
        x = torch.randn(batch, 3, height, width, device=device)
        rows = {
            name: dict(
                model=name,
                family=parse_model_name(name)[0],
                size=parse_model_name(name)[1],
                batch=batch,
                height=height,
                width=width,
                params=sum(p.numel() for p in model.parameters()))
            for name, model in built.items()
        }
        for mode in modes:
            steps = {
                name: named_step(
                    make_step(model, x, mode, dtype),
                    f'{name} at {batch}x3x{height}x{width}, {mode} step')
                for name, model in built.items()
            }
            for name, step in steps.items():
                for _ in range(warmup):
                    step()
            runs = {name: [] for name in steps}
            cpu_runs = {name: [] for name in steps}
            for r in range(repeat):
                order = list(steps)[r % len(steps):] + \
                    list(steps)[:r % len(steps)]
                for name in order:
                    start, cpu_start = time.perf_counter(), time.process_time()
                    steps[name]()
                    cpu_runs[name].append(
                        (time.process_time() - cpu_start) * 1e3)
                    runs[name].append((time.perf_counter() - start) * 1e3)
            for name, step in steps.items():
                if timer == 'process':
                    runs[name], cpu_runs[name] = cpu_runs[name], runs[name]
                rows[name][f'{mode}_ms'] = dict(
                    min=min(runs[name]),
                    median=statistics.median(runs[name]),
                    runs=runs[name],
                    other_timer_runs=cpu_runs[name])
                if memory:
                    rows[name][f'{mode}_peak_mb'] = peak_memory(
                        step, device) / 2**20
                if memory and mode == 'train' and not compile_mode:
                    rows[name]['train_saved_mb'] = saved_memory(
                        step, built[name]) / 2**20
                log(f'{name:12s} {batch}x{height}x{width} {mode:7s} '
                    f'min {min(runs[name]):9.1f} ms  median '
                    f'{statistics.median(runs[name]):9.1f} ms' +
                    (f'  peak {rows[name][f"{mode}_peak_mb"]:8.1f} MB'
                     if memory else '') +
                    (f'  saved {rows[name]["train_saved_mb"]:8.1f} MB'
                     if 'train_saved_mb' in rows[name] and mode == 'train'
                     else ''))
        records.extend(rows.values())
    return records


def _ratio(records, record, key):
    """``key`` of the L2ViT of the same size and setting over ``record``'s.

    Times give two ratios, ``min / paired``: of the min times, and the
    median over repeats of the ratio of the two models' runs of the same
    round (runs are interleaved, so a round's runs saw the same state of
    the machine: the paired ratio cancels drift that min times keep, such
    as one lucky run of one model).
    """
    for other in records:
        if (other['family'] == 'l2vit' and other['size'] == record['size']
                and all(other[k] == record[k]
                        for k in ('batch', 'height', 'width'))):
            mine, theirs = other.get(key), record.get(key)
            if isinstance(mine, dict) and theirs:
                paired = statistics.median(
                    a / b for a, b in zip(mine['runs'], theirs['runs']))
                return f'{mine["min"] / theirs["min"]:.2f} / {paired:.2f}'
            if mine is not None and theirs:
                return f'{mine / theirs:.2f}'
    return '-'


def format_table(records):
    """Format benchmark records as a Markdown table.

    Times are min / median in ms; ``ms/MPx`` is the min forward time per
    million input pixels (batch included), ``MB/MPx`` the train step's peak
    memory per million pixels, ``train saved MB`` the memory kept for
    backward. The last columns divide the L2ViT of the same size and
    setting by the row's model, times as ``min / paired`` (see
    :func:`_ratio`): below 1 means L2ViT is faster or smaller.

    Args:
        records (list[dict]): Records of :func:`benchmark`.

    Returns:
        str: The table.
    """
    lines = [
        '| model | input | fwd ms (min / med) | train ms (min / med) | '
        'fwd peak MB | train peak MB | train saved MB | fwd ms/MPx | '
        'train MB/MPx | L2ViT / this: fwd (min / paired) | '
        'train (min / paired) | train MB | saved MB |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]

    def times(record, mode):
        t = record.get(f'{mode}_ms')
        return f'{t["min"]:.1f} / {t["median"]:.1f}' if t else '-'

    def number(value, fmt='.0f'):
        return '-' if value is None else format(value, fmt)

    for r in records:
        mpx = r['batch'] * r['height'] * r['width'] / 1e6
        fwd = r.get('forward_ms')
        train_mb = r.get('train_peak_mb')
        lines.append(
            f'| {r["model"]} | {r["batch"]}x3x{r["height"]}x{r["width"]} | '
            f'{times(r, "forward")} | {times(r, "train")} | '
            f'{number(r.get("forward_peak_mb"))} | {number(train_mb)} | '
            f'{number(r.get("train_saved_mb"))} | '
            f'{number(fwd and fwd["min"] / mpx, ".1f")} | '
            f'{number(train_mb and train_mb / mpx)} | '
            f'{_ratio(records, r, "forward_ms")} | '
            f'{_ratio(records, r, "train_ms")} | '
            f'{_ratio(records, r, "train_peak_mb")} | '
            f'{_ratio(records, r, "train_saved_mb")} |')
    return '\n'.join(lines)


def plot_format(path):
    """The image format that matplotlib writes ``path`` in.

    Args:
        path (str): The plot's file; its suffix names the format.

    Returns:
        str: The format, e.g. ``'png'``.

    Raises:
        ValueError: matplotlib is not installed or does not write the
            suffix.
    """
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ValueError('the plot needs matplotlib: pip install '
                         'matplotlib') from None
    suffix = osp.splitext(path)[1][1:].lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise ValueError(f'matplotlib writes no {suffix!r} images: end the '
                         f'name with one of .{", .".join(sorted(formats))}')
    return suffix


PLOT_LABELS = {
    'forward_ms': 'forward time, min (ms)',
    'train_ms': 'train-step time, min (ms)',
    'train_peak_mb': 'train-step peak memory (MB)',
    'forward_peak_mb': 'forward peak memory (MB)',
}


def plot(records, path, title):
    """Plot time and peak memory against input pixels.

    The time panel shows the forward pass (the train step when only that
    was timed), the memory panel the train step's peak (the forward's when
    only that was measured; no memory panel without memory measurements).

    Args:
        records (list[dict]): Records of :func:`benchmark`.
        path (str): Where to write the plot, whole or not at all (a PNG,
            or another format of :func:`plot_format`); missing folders are
            created.
        title (str): The figure title.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = []
    for preferred in (('forward_ms', 'train_ms'),
                      ('train_peak_mb', 'forward_peak_mb')):
        found = [key for key in preferred if any(key in r for r in records)]
        panels += found[:1]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 4), dpi=80, squeeze=False)
    axes = axes[0]
    for ax, key in zip(axes, panels):
        for name in dict.fromkeys(r['model'] for r in records):
            points = sorted(
                (r['batch'] * r['height'] * r['width'] / 1e6,
                 r[key]['min'] if isinstance(r[key], dict) else r[key])
                for r in records if r['model'] == name and key in r)
            if points:
                ax.plot(*zip(*points), marker='o', label=name)
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('input pixels, batch included (millions)')
        ax.set_ylabel(PLOT_LABELS[key])
        ax.grid(True, which='both', alpha=.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=plot_format(path)))
    plt.close(fig)


def machine_description(device, threads):
    """Describe where the benchmark ran.

    Args:
        device (str): The device argument.
        threads (int): Number of CPU threads used.

    Returns:
        dict: CPU model, threads, torch version and GPU name if any.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    info = dict(cpu=cpu, threads=threads, torch=torch.__version__)
    if torch.device(device).type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark L2ViT against Swin, ConvNeXt and a '
        'straightforward port of the authors\' layers')
    parser.add_argument(
        '--models',
        nargs='+',
        default=['l2vit-t', 'reference-t', 'swin-t', 'convnext-t'],
        help='family-size names, family in ' + ', '.join(FAMILIES) +
        ', size in t, s, b; l2vit-SIZE-VARIANT, VARIANT in ' +
        ', '.join(L2VIT_VARIANTS))
    parser.add_argument(
        '--sizes',
        nargs='+',
        type=parse_size,
        default=[(224, 224)],
        help='input sizes, S or HxW')
    parser.add_argument(
        '--batch',
        nargs='+',
        type=positive_int,
        default=[8],
        help='one batch size for all sizes, or one per size')
    parser.add_argument(
        '--modes', nargs='+', choices=MODES, default=list(MODES))
    parser.add_argument('--dtype', choices=list(DTYPES), default='fp32')
    parser.add_argument('--device', type=device_name, default='cpu')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--threads',
        type=positive_int,
        default=None,
        help='CPU threads (torch.set_num_threads); default: torch\'s')
    parser.add_argument(
        '--timer',
        choices=['wall', 'process'],
        default='wall',
        help='wall: elapsed time; process: CPU time of this process (for a '
        'CPU shared with other jobs; use with --threads 1)')
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='skip the (untimed, profiled) memory runs')
    parser.add_argument(
        '--compile',
        nargs='?',
        const='default',
        choices=['default', 'reduce-overhead', 'max-autotune'],
        help='run the models through torch.compile (mode; default: '
        '%(const)s); the warm-up runs compile')
    parser.add_argument(
        '--out-png',
        help='write the plot here (PNG; other suffixes of formats that '
        'matplotlib writes give those)')
    parser.add_argument('--out-json', help='write all measurements here')
    args = parser.parse_args(argv)
    for name in args.models:
        try:
            parse_model_name(name)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
    if args.repeat < 1 or args.warmup < 0:
        parser.error('--repeat must be >= 1 and --warmup >= 0')
    graphs = args.compile == 'reduce-overhead'
    if args.compile and args.warmup < 1 + graphs:
        parser.error(
            f'--compile {args.compile} needs --warmup >= {1 + graphs}: the '
            'first run compiles' +
            ('; the second records the CUDA graphs' if graphs else ''))
    try:
        settings_of(args.sizes, args.batch)
    except ValueError as error:
        parser.error(str(error))
    refusal = autocast_refusal(args.device, args.dtype)
    if refusal:
        parser.error(f'--dtype {args.dtype} on {args.device}: {refusal}')
    check_outputs(parser, args)
    return args


def check_outputs(parser, args):
    """Refuse output files that could not be written, before a run that
    may take hours (nothing is written here).

    Args:
        parser (argparse.ArgumentParser): Reports the problem and exits.
        args (argparse.Namespace): The parsed arguments.
    """
    for flag, path in (('--out-png', args.out_png), ('--out-json',
                                                     args.out_json)):
        if path is None:
            continue
        reason = unwritable_reason(path)
        if reason:
            parser.error(f'cannot write {flag} {path}: {reason}')
        if flag == '--out-png':
            try:
                plot_format(path)
            except ValueError as error:
                parser.error(f'{flag} {path}: {error}')


def main(argv=None):
    """Run the benchmark and print a Markdown table.

    Args:
        argv (list[str], optional): Command-line arguments; default
            ``sys.argv[1:]``.

    Returns:
        list[dict]: The records of :func:`benchmark`.
    """
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_description(args.device, torch.get_num_threads())
    settings = settings_of(args.sizes, args.batch)
    try:
        records = benchmark(
            args.models, settings, args.modes, args.dtype, args.device,
            args.repeat, args.warmup, not args.no_memory, args.timer,
            args.compile, lambda msg: print(msg, file=sys.stderr, flush=True))
    except StepError as error:
        raise SystemExit(f'error: {error} (nothing written)')
    where = machine.get('gpu', f'{machine["cpu"]}, {machine["threads"]} '
                        'threads')
    print(f'{args.dtype}, {where}, torch {machine["torch"]}, '
          f'{"torch.compile " + args.compile if args.compile else "eager"}, '
          f'{args.timer} time, {args.repeat} repeats after {args.warmup} '
          'warm-up runs\n')
    print(format_table(records))
    # The measurements first: the plot only draws them.
    if args.out_json:
        measured = dict(machine=machine, args=vars(args), results=records)

        def write_json(tmp):
            with open(tmp, 'w') as f:
                json.dump(measured, f, indent=1)

        write_atomic(args.out_json, write_json)
    if args.out_png:
        plot(records, args.out_png,
             f'{args.dtype}, {where}, torch {machine["torch"]}')
    return records


if __name__ == '__main__':
    main()
