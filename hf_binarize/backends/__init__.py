"""The one place that loads the kernels behind ``torch.ops.hf_binarize.binary_linear`` (and
``binary_linear_int8_act``, native on CPU only) and chooses among them.

Backends:

``"auto"`` (default)
    The fastest available kernel for the input's device: the native CPU library (:mod:`~hf_binarize.backends.cpu`)
    for CPU tensors, the Triton kernels (:mod:`~hf_binarize.backends.triton`) for CUDA tensors; the plain-torch
    reference (:mod:`hf_binarize.ops.reference`) where neither is available or takes the input.
``"torch"``
    Always the reference.

Choose with the scoped :func:`use_backend` (it also pins the CPU instruction set), or for a whole process with the
``HF_BINARIZE_BACKEND`` and ``HF_BINARIZE_CPU_ISA`` environment variables. The choice lives in a context variable,
so a ``with use_backend(...)`` block affects only its own thread and ends with the block.

The backend modules know nothing of this choice: they provide kernels, and :func:`register` (run once on import of
``hf_binarize``) installs them on the op's CPU and CUDA dispatch keys behind the choice made here.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..ops import reference, schema
from . import cpu, triton

BACKENDS = ("auto", "torch")


@dataclass(frozen=True)
class BackendChoice:
    """Which implementation runs: ``name`` (:data:`BACKENDS`) and the CPU instruction set (``"auto"``: the best)."""

    name: str = "auto"
    cpu_isa: str = "auto"

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.name!r}")
        if self.cpu_isa != "auto" and self.cpu_isa not in cpu.ISAS:
            raise ValueError(f"CPU instruction set must be 'auto' or one of {list(cpu.ISAS)}, got {self.cpu_isa!r}")


@functools.cache
def _from_environment() -> BackendChoice:
    # Read where the op first runs, not at import: a typo in the environment must not break `import hf_binarize`.
    try:
        return BackendChoice(os.environ.get("HF_BINARIZE_BACKEND", "auto"), os.environ.get("HF_BINARIZE_CPU_ISA", "auto"))
    except ValueError as error:
        raise ValueError(f"HF_BINARIZE_BACKEND / HF_BINARIZE_CPU_ISA: {error}") from None


# None: no `use_backend` block is active in this context, so the environment decides.
_choice: contextvars.ContextVar[BackendChoice | None] = contextvars.ContextVar("hf_binarize_backend", default=None)


def current_backend() -> BackendChoice:
    """The backend choice in force in this thread."""
    return _choice.get() or _from_environment()


@contextlib.contextmanager
def use_backend(name: str = "auto", *, cpu_isa: str = "auto") -> Iterator[BackendChoice]:
    """Run the packed ops inside the block on backend ``name`` (and CPU instruction set ``cpu_isa``).

    ``with use_backend("torch"):`` runs the plain-torch reference; ``with use_backend(cpu_isa="avx2"):`` pins the
    native CPU kernel's instruction set (raising on the first call if this CPU lacks it).
    """
    token = _choice.set(BackendChoice(name, cpu_isa))
    try:
        yield current_backend()
    finally:
        _choice.reset(token)


def _on_cpu(x, packed, scale, offset, bias, in_features, group_size):
    schema.check_binary(x, packed, scale, offset, bias, in_features, group_size)
    choice = current_backend()
    if (
        choice.name == "torch"
        or x.numel() == 0
        or packed.shape[0] == 0
        or not cpu.supports(in_features, group_size)
        or not cpu.native_available()
    ):
        return reference.binary_linear(x, packed, scale, offset, bias, in_features, group_size)
    return cpu.native_binary_linear(x, packed, scale, offset, bias, in_features, group_size, isa=choice.cpu_isa)


def _int8_act_on_cpu(x, packed, scale, bias, in_features):
    schema.check_binary_int8_act(x, packed, scale, bias, in_features)
    choice = current_backend()
    if (
        choice.name == "torch"
        or x.numel() == 0
        or packed.shape[0] == 0
        or not cpu.native_available()
        or not cpu.int8_kernel_runs(x.numel() // in_features, in_features, choice.cpu_isa)
    ):
        return reference.binary_linear_int8_act(x, packed, scale, bias, in_features)
    return cpu.native_binary_linear_int8_act(x, packed, scale, bias, in_features, isa=choice.cpu_isa)


def _on_cuda(x, packed, scale, offset, bias, in_features, group_size):
    schema.check_binary(x, packed, scale, offset, bias, in_features, group_size)
    if current_backend().name == "torch" or not triton.triton_available():
        return reference.binary_linear(x, packed, scale, offset, bias, in_features, group_size)
    y = triton.triton_binary_linear(x.reshape(-1, in_features), packed, scale, offset, bias, in_features, group_size)
    return y.reshape(*x.shape[:-1], packed.shape[0])


_library = torch.library.Library("hf_binarize", "IMPL")


@functools.cache
def register() -> None:
    """Install the native CPU and Triton kernels for ``binary_linear`` and the native CPU kernel for
    ``binary_linear_int8_act`` (idempotent; loads no library, no triton).

    The CPU kernel goes straight on the dispatcher's CPU key rather than through
    ``binary_linear.register_kernel("cpu")``: the latter wraps it in an output-aliasing check that cost 12 us a
    call on the test machine, as much as the whole kernel for a 1024 x 1024 layer.
    """
    _library.impl("binary_linear", _on_cpu, "CPU")
    _library.impl("binary_linear_int8_act", _int8_act_on_cpu, "CPU")
    schema.binary_linear.register_kernel("cuda")(_on_cuda)


__all__ = ["BACKENDS", "BackendChoice", "current_backend", "register", "use_backend"]
