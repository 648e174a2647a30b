"""Process memory as Linux reports it in /proc/self/status, for the benchmarks that run one model per process.

``RssAnon`` and not ``VmRSS`` for what a process holds: checkpoints are memory-mapped, and their file pages are page
cache the kernel reclaims, while anonymous memory (heap, tensors) is what the process itself keeps.
"""

from __future__ import annotations

import threading
import time


def status_mb(field: str) -> float:
    """One /proc/self/status field (``RssAnon``, ``VmRSS``, ``VmHWM``...) in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


class AnonPeak:
    """The highest ``RssAnon`` seen while the ``with`` block runs, sampled every 5 ms by a thread (a peak that lasts
    less than that can be missed; the tensors that make the peaks here live far longer)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak_mb = max(self.peak_mb, status_mb("RssAnon"))
            time.sleep(0.005)

    def __enter__(self) -> AnonPeak:
        self.peak_mb = status_mb("RssAnon")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, status_mb("RssAnon"))
