"""Backends behind ``torch.ops.hf_binarize.binary_linear``: which implementation runs for a given input.

``"auto"`` (default) picks the fastest available backend for the input's device: the native CPU library for CPU
tensors, the Triton kernel for CUDA tensors, and the plain-torch reference (:mod:`hf_binarize.ops`) otherwise or
when a backend is unavailable. ``"torch"`` always runs the reference. Set it with :func:`set_backend` or the
``HF_BINARIZE_BACKEND`` environment variable.
"""

from __future__ import annotations

import os

BACKENDS = ("auto", "torch")
_backend = os.environ.get("HF_BINARIZE_BACKEND", "auto")


def set_backend(name: str) -> None:
    """Choose the backend of the packed ops: ``"auto"`` or ``"torch"`` (the reference)."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {name!r}")
    _backend = name


def get_backend() -> str:
    if _backend not in BACKENDS:
        raise ValueError(f"HF_BINARIZE_BACKEND must be one of {list(BACKENDS)}, got {_backend!r}")
    return _backend


# Last, because the Triton module imports get_backend from here. Registering imports no triton and touches no GPU.
from .triton import register as _register_triton  # noqa: E402

_register_triton()

from .cpu import register as _register_cpu  # noqa: E402

_register_cpu()
