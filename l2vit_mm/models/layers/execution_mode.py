# Copyright (c) l2vit_mm contributors. All rights reserved.
"""Which path a layer takes: eager or traced/compiled, training or not,
on which device, under which autocast dtype.

The CPU-specific paths of the layers (chunked inference, the custom
autograd functions' CPU chunks, the depthwise weight gradient) run only
eagerly; tracing (FLOP counting, ONNX export) and compiling
(``torch.compile``/``torch.export``) see the plain whole-map operators.
"""
import torch
import torch.nn as nn
from torch.nn.modules.module import (_global_forward_hooks,
                                     _global_forward_pre_hooks)


def eager_on_cpu(x: torch.Tensor) -> bool:
    """Whether ``x`` is on the CPU and the code runs eagerly.

    Args:
        x (Tensor): The input of the layer.

    Returns:
        bool: True on the CPU when neither traced (FLOP counting, ONNX
        export) nor compiled (``torch.compile``/``torch.export``).
    """
    return x.device.type == 'cpu' and runs_eagerly()


def trains_eagerly(*tensors: torch.Tensor) -> bool:
    """Whether autograd records an eager (neither traced nor compiled)
    computation on ``tensors``, on any device.

    Args:
        *tensors (Tensor): The inputs and parameters of the computation.

    Returns:
        bool: True when grad mode is on, one of ``tensors`` requires a
        gradient and the code is neither traced nor compiled.
    """
    return (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
            and runs_eagerly())


def trains_eagerly_on_cpu(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a layer runs eagerly on the CPU with autograd recording it.

    Args:
        x (Tensor): The input of the layer.
        weight (Tensor): A parameter of the layer.

    Returns:
        bool: True on the CPU when :func:`trains_eagerly` on ``x`` and
        ``weight``.
    """
    return x.device.type == 'cpu' and trains_eagerly(x, weight)


def hooks_within(module: nn.Module) -> bool:
    """Whether forward hooks may see the tensors of ``module``'s submodules.

    A layer that writes into a tensor that one of its submodules returned,
    runs a submodule chunk by chunk or computes it from its weights without
    calling it takes its plain path instead while this is true: hooks (a
    feature recorder, CAM, distillation) then see every submodule called
    once, on the whole map, and its output unchanged.

    Args:
        module (nn.Module): The layer.

    Returns:
        bool: True when a forward hook or pre-hook is registered on a
        submodule of ``module`` (at any depth) or on all modules.
    """
    if _global_forward_hooks or _global_forward_pre_hooks:
        return True
    stack = list(module._modules.values())
    while stack:
        child = stack.pop()
        if child is None:
            continue
        if child._forward_hooks or child._forward_pre_hooks:
            return True
        stack.extend(child._modules.values())
    return False


def runs_eagerly() -> bool:
    """Whether the code runs eagerly, neither traced (FLOP counting, ONNX
    export) nor compiled (``torch.compile``/``torch.export``).

    Returns:
        bool: True when neither tracing nor compiling.
    """
    return not torch.jit.is_tracing() and not is_compiling()


def is_compiling() -> bool:
    """Whether ``torch.compile`` or ``torch.export`` is tracing the code.

    Returns:
        bool: The compiler's own answer (``torch._dynamo``'s before torch
        2.3).
    """
    compiler = getattr(torch, 'compiler', None)
    if hasattr(compiler, 'is_compiling'):
        return compiler.is_compiling()
    return torch._dynamo.is_compiling()  # torch < 2.3


def autocast_dtype(device_type):
    """The dtype of autocast on a device type.

    Args:
        device_type (str): ``'cpu'``, ``'cuda'``, ...

    Returns:
        torch.dtype | None: The autocast dtype, or None when autocast is
        off on that device type or does not support it (``'meta'``).
    """
    try:
        enabled = torch.is_autocast_enabled(device_type)
        dtype = torch.get_autocast_dtype(device_type)
    except RuntimeError:  # a device type without autocast
        return None
    except (TypeError, AttributeError):  # torch < 2.4
        if device_type == 'cpu':
            enabled = torch.is_autocast_cpu_enabled()
            dtype = torch.get_autocast_cpu_dtype()
        else:
            enabled = torch.is_autocast_enabled()
            dtype = torch.get_autocast_gpu_dtype()
    return dtype if enabled else None
