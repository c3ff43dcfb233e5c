"""Memory: checks before loading, and a peak-RSS sampler while something runs."""

from __future__ import annotations

import threading
import time

import psutil

from .errors import InsufficientMemoryError

# Loading needs the weights plus runtime buffers (KV cache, activations, allocator slack).
LOAD_OVERHEAD_FACTOR = 1.2
LOAD_OVERHEAD_BYTES = 512 * 2**20


def available_memory_bytes() -> int:
    return int(psutil.virtual_memory().available)


def check_fits(what: str, weights_bytes: int, *, extra_bytes: int = 0,
               available_bytes: int | None = None) -> int:
    """Raise before loading when `weights_bytes` (+ runtime overhead) exceeds available memory.

    Returns the estimated bytes needed.
    """
    need = int(weights_bytes * LOAD_OVERHEAD_FACTOR) + LOAD_OVERHEAD_BYTES + int(extra_bytes)
    have = available_memory_bytes() if available_bytes is None else int(available_bytes)
    if need > have:
        raise InsufficientMemoryError(
            f"{what} needs about {need / 2**30:.1f} GiB ({weights_bytes / 2**30:.1f} GiB of weights "
            f"x{LOAD_OVERHEAD_FACTOR} + runtime) but this machine has {have / 2**30:.1f} GiB "
            "available. Choose a smaller model or a lower-bit format (e.g. Q4_K_M GGUF), reduce "
            "the context length, or run on a machine with more memory."
        )
    return need


class PeakRSS:
    """Samples the RSS of this process and its children every `interval_s`; `.peak_bytes`.

    Use as a context manager around a load or a generation.
    """

    def __init__(self, pid: int | None = None, interval_s: float = 0.05, children: bool = True):
        self.proc = psutil.Process(pid)
        self.interval_s = interval_s
        self.children = children
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        total = 0
        procs = [self.proc]
        if self.children:
            try:
                procs += self.proc.children(recursive=True)
            except psutil.Error:
                pass
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval_s)

    def __enter__(self):
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sample()
        return False
