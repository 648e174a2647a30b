"""``python -m hf_binarize``: the ``hf-binarize`` command line (see :mod:`hf_binarize.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
