"""Benchmarks, run as ``python -m hf_binarize.bench <name>``: ``kernels`` times ``binary_linear`` against dense
``F.linear`` (see :mod:`hf_binarize.bench.kernels`)."""
