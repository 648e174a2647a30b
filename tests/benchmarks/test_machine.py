import os
import sys
from pathlib import Path

import pytest

from hf_binarize.benchmarks.machine import describe_cpu


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_the_description_names_the_cpu_model_and_only_flags_it_has():
    info = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    flags = set(next(line.split(":", 1)[1] for line in info if line.startswith("flags")).split())
    text = describe_cpu()
    assert text.startswith(f"{model} ({os.cpu_count()} cores; ")
    listed = text.split("; ")[1].split()
    assert listed and set(listed) <= flags
    assert ("avx2" in listed) == ("avx2" in flags)
