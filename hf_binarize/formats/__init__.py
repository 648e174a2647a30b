"""Weight formats: how one float weight matrix becomes named tensors on a packed module, and back.

``binary``  :class:`BinaryFormat`, format ``sign-lsb-v1``: signs packed 8 per byte, scales per channel or group
            (where a weight is packed, unpacked and dequantized: :mod:`hf_binarize.formats.binary`).
``int8``    :class:`Int8Format`: int8 weights with one scale per output channel.
``storage`` what both share: the tensor spec and the one way scales are rounded to their dtype.

A packed module stores each quantized weight ``W`` under its original name (``weight``, ``weight_ih_l0``,
...) plus companions named by suffix (``weight_scale``, ``weight_offset``). The format object knows the
names, shapes and dtypes of those tensors, how to fill them from a float weight, how to multiply by them
(through ``torch.ops.hf_binarize.*``, so this package imports no op or backend) and how to check tensors read
from a checkpoint. Every format stores the tensor under the original name with a shape no float layer has (packed
bytes ``[N, ceil(K/8)]``, flat int8 ``[N*K]``), so a checkpoint loaded without hf_binarize fails on a shape mismatch
instead of loading garbage.
"""

from .binary import PACKING_FORMAT, BinaryFormat
from .int8 import Int8Format
from .storage import TensorSpec

WeightFormat = BinaryFormat | Int8Format

__all__ = ["PACKING_FORMAT", "BinaryFormat", "Int8Format", "TensorSpec", "WeightFormat"]
