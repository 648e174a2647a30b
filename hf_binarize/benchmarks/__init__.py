"""Benchmarks of the packed kernels, run as ``hf-binarize bench <name>``: ``kernels`` times ``binary_linear``
against dense ``F.linear`` (see :mod:`hf_binarize.benchmarks.kernels`). The scripts that benchmark whole models, and
their results, are in the repository's top-level ``bench/`` folder."""
