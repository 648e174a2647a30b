"""What a command or a training recipe prints besides its results: a problem with what was passed as one line with
its fix, and the log format."""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from collections.abc import Callable

PROG = "hf-binarize"


class CommandError(Exception):
    """A problem with what the user passed, stated with its fix; :func:`hf_binarize.commands.main.main` prints it
    as one line."""


# Errors in what was passed, from the commands and from the libraries they call: a missing file or folder, a
# connection or permission problem (OSError), a value the library rejects (ValueError: a bad module pattern, a
# missing dataset column or split).
_USER_ERRORS = (CommandError, OSError, ValueError)

# A write that failed for lack of room or of a writable disk, and its fix.
_STORAGE_FIXES = {errno.ENOSPC: "free some space or write elsewhere",
                  errno.EDQUOT: "free some space or write elsewhere",
                  errno.EROFS: "write to a writable folder"}

# The optional dependencies, by the top-level module an ImportError names, and what installs them (accelerate,
# which transformers needs for its Trainer and for some ways of loading a model, is in no extra).
_INSTALLS = {"datasets": "hf-binarize[data]", "pyarrow": "hf-binarize[data]", "soundfile": "hf-binarize[data]",
             "scipy": "hf-binarize[data]", "matplotlib": "hf-binarize[cards]", "huggingface_hub": "hf-binarize[cards]",
             "peft": "hf-binarize[peft]", "accelerate": "accelerate"}


def error_message(error: Exception) -> str | None:
    """The one line that states ``error``, a problem with what was passed (a full disk, a missing optional
    dependency, a :class:`CommandError`, ``OSError`` or ``ValueError``), else ``None``: a bug, to be raised with
    its traceback."""
    message = _storage_problem(error) or _missing_dependency(error)
    if message is None:
        if not isinstance(error, _USER_ERRORS):
            return None
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return message or type(error).__name__


def run_reporting_errors(prog: str, run: Callable[[], object]) -> int:
    """Calls ``run`` and returns the exit status: 0, or 1 after printing ``{prog}: error: {message}`` on stderr
    for a problem with what was passed (:func:`error_message`); a bug raises with its traceback. The commands and
    the training recipes end this way."""
    try:
        run()
    except Exception as error:
        message = error_message(error)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    return 0


def _storage_problem(error: Exception) -> str | None:
    """The one-line message for a write that failed because the disk is full, over quota or read-only, else
    ``None``. safetensors writes in Rust and raises its own error, the OS error only in its message, as
    ``(os error 28)``."""
    code = error.errno if isinstance(error, OSError) else None
    if code is None and (match := re.search(r"\(os error (\d+)\)", str(error))):
        code = int(match[1])
    if code not in _STORAGE_FIXES:
        return None
    where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
    return f"{os.strerror(code)}{where}: {_STORAGE_FIXES[code]}"


def _missing_dependency(error: Exception) -> str | None:
    """The one-line message for an optional dependency that is not installed, else ``None``. transformers' lazy
    imports and :mod:`hf_binarize.cards` re-raise the ImportError naming the module as the cause of their own."""
    while isinstance(error, ImportError):
        module = (error.name or "").split(".")[0]
        if module in _INSTALLS:
            return f"{module} is not installed: pip install '{_INSTALLS[module]}'"
        error = error.__cause__ or error.__context__
    return None


def setup_logging() -> None:
    """INFO for this package (WER lines, decoded samples), WARNING for the libraries. In the other processes of a
    distributed run (``RANK`` set by torchrun or accelerate, not 0) this package logs warnings only, as the Trainer
    does for transformers, so that the log says everything once."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    main_process = int(os.environ.get("RANK", "0")) == 0
    logging.getLogger("hf_binarize").setLevel(logging.INFO if main_process else logging.WARNING)
