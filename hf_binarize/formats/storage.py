"""What every weight format shares: the spec of its stored tensors, and scales stored without silent loss.

Scales and offsets are rounded to the configured dtype by one function, :func:`to_scale_dtype`, so that every stored
scale passes the same check whether it comes from post-training quantization, a learned QAT scale or a frozen model.
:func:`fits` is the same test as a yes or no, for tensors that have somewhere else to go when they do not fit (the
float tensors a packed checkpoint stores in float16, :func:`hf_binarize.quantize.storage_dtypes`).
"""

from __future__ import annotations

import torch

TensorSpec = tuple[tuple[int, ...], torch.dtype]
"""Shape and dtype of one stored tensor."""

# Worst relative rounding error accepted when storing a scale: bfloat16's 8-bit mantissa. float16 only exceeds it
# in its subnormal range (|scale| < 6.1e-5), where the precision of a stored scale silently decays.
_SCALE_REL_ERROR = 2.0**-8


def rounding_error(values: torch.Tensor, dtype: torch.dtype,
                   magnitude: torch.Tensor | None = None) -> torch.Tensor:
    """Per element, the error of storing float ``values`` in ``dtype`` relative to ``|values|`` (or to
    ``magnitude`` where that is larger); ``inf`` where the stored value overflows."""
    wide = values.to(dtype).to(torch.float32)
    values = values.to(torch.float32)
    size = values.abs() if magnitude is None else torch.maximum(values.abs(), magnitude)
    error = ((wide - values).abs() / size).nan_to_num(0.0, posinf=float("inf"))
    return error.masked_fill(~torch.isfinite(wide), float("inf"))


def fits(values: torch.Tensor, dtype: torch.dtype, magnitude: torch.Tensor | None = None) -> bool:
    """Whether ``values`` survive a round trip through ``dtype``: finite, and within bfloat16's rounding error
    relative to ``|values|`` (or ``magnitude``, see :func:`rounding_error`)."""
    return bool((rounding_error(values, dtype, magnitude) <= _SCALE_REL_ERROR).all())


def to_scale_dtype(values: torch.Tensor, scale_dtype: torch.dtype, what: str,
                   magnitude: torch.Tensor | None = None) -> torch.Tensor:
    """Store float32 scales (or offsets) in ``scale_dtype``; raise instead of overflowing or losing precision.

    The rounding error is measured relative to ``|values|``, or to ``magnitude`` where that is larger: an offset
    near zero only has to be exact relative to the size of the weights it is subtracted from.
    """
    error = rounding_error(values, scale_dtype, magnitude)
    if (error > _SCALE_REL_ERROR).any():
        worst = values.flatten()[error.flatten().argmax()].item()
        raise ValueError(
            f"a {what} of {worst:.3g} does not fit {scale_dtype} (overflow or subnormal precision loss); "
            "set scale_dtype='float32' (or 'bfloat16') in BinaryQuantizationConfig"
        )
    return values.to(scale_dtype)
