"""hf_binarize: 1-bit weights for speech recognition models in the Hugging Face ecosystem.

Importing the package registers ``quant_method="hf_binarize"`` with transformers, so that
``from_pretrained(path, quantization_config=BinaryQuantizationConfig())`` binarizes a float checkpoint and
``from_pretrained(packed_folder)`` loads a packed one.
"""

from importlib import import_module as _import_module

from .backends import register as _register_backends
from .backends import use_backend
from .config import BinaryQuantizationConfig
from .formats import BinaryFormat, Int8Format
from .formats.binary import PACKING_FORMAT, binarize, dequantize, pack_signs, unpack_signs
from .integrations.import_hooks import when_imported as _when_imported
from .integrations.transformers import register as _register_transformers
from .losses import register as _register_losses
from .nn import PackedConv1d, PackedEmbedding, PackedLinear, PackedLSTM, PackedModule
from .nn.qat import QATLSTM, QATConv1d, QATEmbedding, QATLinear, QATModule
from .quantize import dequantize_model, freeze, quantize_model, set_binarization_mix
from .size import SizeReport, folder_size, size_report

_register_backends()
_register_transformers()
_register_losses()
# peft is optional and slow to import: its LoRA dispatch learns about packed layers once the user imports it.
_when_imported("peft", lambda _peft: _import_module("hf_binarize.integrations.peft").install())

__version__ = "0.1.0"

__all__ = [
    "PACKING_FORMAT",
    "QATLSTM",
    "BinaryFormat",
    "BinaryQuantizationConfig",
    "Int8Format",
    "PackedConv1d",
    "PackedEmbedding",
    "PackedLSTM",
    "PackedLinear",
    "PackedModule",
    "QATConv1d",
    "QATEmbedding",
    "QATLinear",
    "QATModule",
    "SizeReport",
    "binarize",
    "dequantize",
    "dequantize_model",
    "folder_size",
    "freeze",
    "pack_signs",
    "quantize_model",
    "set_binarization_mix",
    "size_report",
    "unpack_signs",
    "use_backend",
]
