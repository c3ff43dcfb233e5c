"""The hardware limit: memory bandwidth, measured once per results folder.

A batch-1 decode step streams the weights once, so bandwidth ÷ bytes read per token is its
ceiling (the roofline, :func:`slmstudy.metrics.roofline_tok_s`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..params import SpeedParams


def measure_bandwidth(nbytes: int = 2 * 2**30, repeats: int = 5, device: str = "cpu") -> dict:
    """Memory bandwidth from a large copy (torch; all CPU threads, or device-to-device on a GPU):
    bytes read + written per second, best of `repeats`. A batch-1 decode step streams the weights
    once, so this is its ceiling."""
    import torch

    n = int(nbytes)
    src = torch.ones(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # touch pages
    times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        dst.copy_(src)
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    best = min(times)
    # read-only: a reduction over the same bytes (a decode step reads weights, it writes little;
    # a copy also pays write-allocate traffic that 2n/t does not count)
    flat = src.view(torch.float32) if n % 4 == 0 else src.float()
    read_times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        flat.sum()
        if device != "cpu":
            torch.cuda.synchronize()
        read_times.append(time.perf_counter() - t0)
    copy_bw, read_bw = 2 * n / best, n / min(read_times)
    del src, dst, flat
    return {"copy_bytes": n, "best_s": best, "median_s": float(np.median(times)),
            "copy_bandwidth_bytes_s": copy_bw, "read_bandwidth_bytes_s": read_bw,
            "bandwidth_bytes_s": max(copy_bw, read_bw), "threads": torch.get_num_threads(),
            "device": device if device == "cpu" else torch.cuda.get_device_name(),
            "method": "max of torch copy_ (read + write counted) and a float32 sum (bytes read), "
                      f"best of {repeats} each"}

def cached_bandwidth(bw_file: Path, params: SpeedParams) -> dict:
    """The bandwidth measured once per results folder (a rerun or a later call reuses it)."""
    if bw_file.is_file():
        return json.loads(bw_file.read_text())
    bw = measure_bandwidth(params.bandwidth_bytes, device=params.device)
    bw_file.write_text(json.dumps(bw, indent=2))
    return bw
