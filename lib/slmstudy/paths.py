"""One place that anchors every path on the repository root (no path depends on the cwd)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO_ROOT / "build"
PARAMS_DIR = REPO_ROOT / "params"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
FIGURES_DIR = REPO_ROOT / "figures"
RESULTS_DIR = REPO_ROOT / "results"
PROJECT_DATA_DIR = REPO_ROOT / "data"


def cache_dir() -> Path:
    """Where derived model artifacts live: `SLMSTUDY_CACHE`, default `build/cache`."""
    return Path(os.environ.get("SLMSTUDY_CACHE", BUILD_DIR / "cache")).expanduser().resolve()


def runs_dir() -> Path:
    """Where per-run results go: `SLMSTUDY_RUNS`, default `build/runs`."""
    return Path(os.environ.get("SLMSTUDY_RUNS", BUILD_DIR / "runs")).expanduser().resolve()


def benchmark_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Benchmark data folder: explicit argument, else `SLMSTUDY_DATA_DIR`, else `../shared/data`."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("SLMSTUDY_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def shown(path) -> str:
    """A path as people read it: relative to the repository root when inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
