"""Transducer losses in pure PyTorch for transformers' Parakeet models.

``transformers`` computes the loss of ``ParakeetForRNNT`` with torchaudio, which cannot be installed beside every
torch build; :func:`register` puts these implementations in ``transformers.loss.loss_utils.LOSS_MAPPING`` instead.
"""

from __future__ import annotations

import importlib.util

from .rnnt import REDUCTIONS, parakeet_rnnt_loss, reduce_losses, rnnt_loss
from .tdt import parakeet_tdt_loss, tdt_loss

__all__ = [
    "REDUCTIONS",
    "parakeet_rnnt_loss",
    "parakeet_tdt_loss",
    "reduce_losses",
    "register",
    "rnnt_loss",
    "tdt_loss",
]


def _torchaudio_available() -> bool:
    return importlib.util.find_spec("torchaudio") is not None


def register(force: bool = False) -> bool:
    """Make ``ParakeetForRNNT`` and ``ParakeetForTDT`` compute their loss with this package.

    Models look ``LOSS_MAPPING`` up on every forward, so models built before the call switch too. The arguments
    and reductions of transformers' entries are kept (see :func:`parakeet_rnnt_loss`, :func:`parakeet_tdt_loss`).

    Args:
        force: Install even when torchaudio is importable (transformers' own losses then work as well; its TDT loss
            never needed torchaudio but stores an autograd graph far larger than the logits).

    Returns:
        Whether the entries were installed.
    """
    if not force and _torchaudio_available():
        return False
    from transformers.loss.loss_utils import LOSS_MAPPING

    LOSS_MAPPING["ParakeetForRNNT"] = parakeet_rnnt_loss
    LOSS_MAPPING["ParakeetForTDT"] = parakeet_tdt_loss
    return True
