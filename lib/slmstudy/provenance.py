"""Provenance: what ran, where, with which versions — attached to every run."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil

from .paths import REPO_ROOT

BASE_PACKAGES = ("slmstudy", "torch", "gguf", "papermill", "numpy")


def tracked_packages() -> tuple[str, ...]:
    """The study's own packages and every registered engine's distributions."""
    from .backends import registry

    return tuple(dict.fromkeys(BASE_PACKAGES + registry.distributions()))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions(names=None) -> dict[str, str]:
    out = {}
    names = tracked_packages() if names is None else names
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_state(root: Path = REPO_ROOT) -> dict:
    def run(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = run("rev-parse", "HEAD")
    if len(commit) != 40:
        commit = ""
    if not commit and os.environ.get("SLMSTUDY_GIT_COMMIT"):  # a copied tree without .git (GPU)
        return {"commit": os.environ["SLMSTUDY_GIT_COMMIT"], "dirty": None,
                "source": "SLMSTUDY_GIT_COMMIT"}
    dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit or None, "dirty": dirty}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> list[dict]:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return gpus


def hardware() -> dict:
    return {
        "cpu": cpu_model(),
        "cores_logical": psutil.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "ram_bytes": psutil.virtual_memory().total,
        "gpus": gpu_info(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def provenance(extra: dict | None = None) -> dict:
    block = {
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "packages": package_versions(),
        "hardware": hardware(),
    }
    if extra:
        block.update(extra)
    return block


def hardware_label(prov: dict | None) -> str:
    """'1× NVIDIA H100 80GB HBM3 (driver 550.54) · AMD EPYC 9654, 16 cores, 125.9 GiB RAM'."""
    hw = (prov or {}).get("hardware") or {}
    if not hw:
        return "hardware not recorded"
    parts = []
    gpus = hw.get("gpus") or []
    if gpus:
        names: dict[str, int] = {}
        for g in gpus:
            names[g.get("name", "GPU")] = names.get(g.get("name", "GPU"), 0) + 1
        drv = gpus[0].get("driver")
        parts.append(", ".join(f"{n}× {name}" for name, n in names.items())
                     + (f" (driver {drv})" if drv else ""))
    cpu = hw.get("cpu") or "CPU"
    cores = hw.get("cores_logical")
    ram = hw.get("ram_bytes")
    parts.append(cpu + (f", {cores} cores" if cores else "") + (f", {ram / 2**30:.1f} GiB RAM" if ram else ""))
    if not gpus:
        parts.append("no GPU")
    return " · ".join(parts)


def device_label(prov: dict | None) -> str:
    """The device a run's numbers come from: its first GPU's name, else its CPU."""
    hw = (prov or {}).get("hardware") or {}
    gpus = hw.get("gpus") or []
    return gpus[0].get("name", "GPU") if gpus else (hw.get("cpu") or "CPU")
