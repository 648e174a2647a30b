"""The ops every packed module multiplies through: ``torch.ops.hf_binarize.binary_linear``,
``binary_linear_int8_act`` (int8 activations) and ``int8_linear``.

:mod:`~hf_binarize.ops.schema` declares them (arguments, checks, fakes, autograd); :mod:`~hf_binarize.ops.reference`
is their plain-torch implementation. Faster kernels live in :mod:`hf_binarize.backends` and register themselves for
these ops; nothing here imports them.
"""

from .schema import binary_linear, binary_linear_int8_act, int8_linear

__all__ = ["binary_linear", "binary_linear_int8_act", "int8_linear"]
