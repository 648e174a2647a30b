"""Which 1x1 convolutions multiply over the last dimension of their input (float, QAT and packed alike)."""

from torch import nn

# Conv1d subclasses whose forward transposes [B, T, C] around the convolution, i.e. a matmul over the last dim.
CHANNELS_LAST_CONV1D = {"ParakeetEncoderCTCHead"}


def channels_last(module: nn.Conv1d) -> bool:
    """Whether ``module`` takes ``[..., T, C]``: QAT and packed convs say so themselves, float ones by their class."""
    return getattr(module, "channels_last", type(module).__name__ in CHANNELS_LAST_CONV1D)
