"""``python -m hf_binarize``: the ``hf-binarize`` command line (see :mod:`hf_binarize.commands`)."""

import sys

from .commands.main import main

if __name__ == "__main__":
    sys.exit(main())
