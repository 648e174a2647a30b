"""``size_report``: what a model costs as a checkpoint, byte for byte, by module group and precision.

Bytes are counted in the dtype ``save_pretrained`` writes each tensor in: a packed model's biases, norms and other
unquantized float tensors in float16 (:func:`hf_binarize.quantize.storage_dtypes`), although it holds them in its
compute dtype in memory; everything else as held.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .nn import PackedModule
from .nn.kinds import MODULE_KINDS
from .quantize import own_tensors, storage_dtypes


@dataclass
class ModuleSize:
    """One module's own tensors (not its children's)."""

    name: str
    group: str
    precision: str
    params: int
    bytes: int
    fp32_bytes: int


@dataclass
class SizeReport:
    """Sizes of every module with tensors, plus the on-disk size of a saved folder when one was given.

    ``params`` counts logical weights (a packed ``N x K`` matrix is ``N * K`` params); ``bytes`` counts every stored
    byte: packed signs, scales, offsets, biases, norms and buffers saved with the model, each in the dtype it is
    saved in (the sum is the tensor data of the checkpoint's safetensors files).
    """

    modules: list[ModuleSize]
    folder: str | None = None
    folder_bytes: int | None = None
    groups: list[dict] = field(init=False)

    def __post_init__(self) -> None:
        rows: dict[tuple[str, str], dict] = {}
        for m in self.modules:
            row = rows.setdefault((m.group, m.precision), {"group": m.group, "precision": m.precision, "modules": 0,
                                                            "params": 0, "bytes": 0, "fp32_bytes": 0})
            row["modules"] += 1
            row["params"] += m.params
            row["bytes"] += m.bytes
            row["fp32_bytes"] += m.fp32_bytes
        self.groups = sorted(rows.values(), key=lambda r: -r["bytes"])

    @property
    def total_params(self) -> int:
        return sum(m.params for m in self.modules)

    @property
    def total_bytes(self) -> int:
        return sum(m.bytes for m in self.modules)

    @property
    def fp32_bytes(self) -> int:
        return sum(m.fp32_bytes for m in self.modules)

    @property
    def compression(self) -> float:
        """How many times smaller than the same model in float32."""
        return self.fp32_bytes / max(self.total_bytes, 1)

    @property
    def bits_per_param(self) -> float:
        return 8 * self.total_bytes / max(self.total_params, 1)

    def to_dict(self) -> dict:
        return {
            "total_params": self.total_params,
            "total_bytes": self.total_bytes,
            "fp32_bytes": self.fp32_bytes,
            "compression_vs_fp32": self.compression,
            "bits_per_param": self.bits_per_param,
            "folder": self.folder,
            "folder_bytes": self.folder_bytes,
            "groups": self.groups,
            "modules": [asdict(m) for m in self.modules],
        }

    def __str__(self) -> str:
        lines = [f"{'group':<12}{'precision':<11}{'modules':>8}{'params':>14}{'bytes':>14}{'bits/param':>12}{'share':>8}"]
        for row in self.groups:
            bits = 8 * row["bytes"] / max(row["params"], 1)
            share = 100 * row["bytes"] / max(self.total_bytes, 1)
            lines.append(f"{row['group']:<12}{row['precision']:<11}{row['modules']:>8}{row['params']:>14,}"
                         f"{row['bytes']:>14,}{bits:>12.2f}{share:>7.1f}%")
        lines.append(f"{'total':<31}{self.total_params:>14,}{self.total_bytes:>14,}{self.bits_per_param:>12.2f}")
        lines.append(f"fp32 equivalent: {self.fp32_bytes:,} bytes; compression vs fp32: {self.compression:.1f}x")
        if self.folder_bytes is not None:
            lines.append(f"on disk ({self.folder}): {self.folder_bytes:,} bytes, "
                         f"{self.fp32_bytes / max(self.folder_bytes, 1):.1f}x smaller than fp32 weights")
        return "\n".join(lines)


def folder_size(path: str | os.PathLike) -> int:
    """Bytes of every file under ``path`` (weights, configs, everything a download would fetch)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the folder save_pretrained wrote")
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def size_report(model: nn.Module, folder: str | os.PathLike | None = None) -> SizeReport:
    """Per-module and per-group parameters, bits per parameter and bytes of ``model`` as saved, and compression vs
    fp32.

    Pass ``folder`` (a ``save_pretrained`` output) to also report its size on disk.
    """
    dtypes = storage_dtypes(model)
    seen: set[int] = set()
    modules = []
    for name, module in model.named_modules():
        tensors = {key: t for key, t in own_tensors(module).items() if id(t) not in seen}
        seen.update(id(t) for t in tensors.values())
        if not tensors:
            continue
        stored = {key: dtypes.get(f"{name}.{key}" if name else key, t.dtype) for key, t in tensors.items()}
        modules.append(_module_size(name, module, tensors, stored))
    return SizeReport(modules, None if folder is None else str(folder), None if folder is None else folder_size(folder))


def _module_size(name: str, module: nn.Module, tensors: dict[str, torch.Tensor],
                 stored: dict[str, torch.dtype]) -> ModuleSize:
    nbytes = sum(t.numel() * stored[key].itemsize for key, t in tensors.items())
    if isinstance(module, PackedModule):
        params = sum(out * inp for out, inp in module.matrices.values())
        params += sum(getattr(module, n).numel() for n in module.float_names)
        precision = module.fmt.method
        fp32 = 4 * params
    else:
        floats = [t for t in tensors.values() if t.is_floating_point()]
        params = sum(t.numel() for t in floats)
        precision = "float"
        fp32 = 4 * params + sum(t.numel() * t.element_size() for t in tensors.values() if not t.is_floating_point())
    return ModuleSize(name, _group(name, module), precision, params, nbytes, fp32)


def _group(name: str, module: nn.Module) -> str:
    if any(part == "joint" or part.endswith("head") for part in name.split(".")):
        return "joint/head"
    for kind in MODULE_KINDS.values():
        if isinstance(module, (kind.replaces, kind.packed)):
            return kind.name
    return "other"
