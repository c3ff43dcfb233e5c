"""Energy per output token on a GPU, from NVML (nvidia-ml-py), over each timed batch.

Two readings per batch, both from the driver:

- the GPU's energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver
  loaded; Volta and later) read at the start and the end of the batch — the energy figure;
- its power (`nvmlDeviceGetPowerUsage`, milliwatts) sampled every `interval_s` in a thread —
  the mean power, and a cross-check (the integral of the samples).

Joules per output token = the batch's energy ÷ the output tokens of all its requests. This is the
whole board's energy, idle draw included (what a deployment pays). The counter advances in
steps of tens of milliseconds, so batches shorter than about half a second read coarsely; the
record keeps both readings and the number of power samples.

One line per batch goes to `energy.jsonl` beside `samples.jsonl` (same key as the batch's
records without the request index).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

ENERGY_FILE = "energy.jsonl"


def trapezoid_j(samples: list[tuple[float, float]]) -> float | None:
    """∫ power dt over (time s, power W) samples, in joules (None with fewer than two)."""
    if len(samples) < 2:
        return None
    return float(sum((t1 - t0) * (p0 + p1) / 2
                     for (t0, p0), (t1, p1) in zip(samples, samples[1:])))


class _NVML:
    """The few NVML calls used, on one device (index, or the first visible GPU)."""

    def __init__(self, index: int = 0):
        import pynvml

        pynvml.nvmlInit()
        self.nv = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self.name = pynvml.nvmlDeviceGetName(self.handle)
        if isinstance(self.name, bytes):
            self.name = self.name.decode()

    def energy_mj(self) -> int | None:
        try:
            return int(self.nv.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except self.nv.NVMLError:
            return None

    def power_w(self) -> float:
        return self.nv.nvmlDeviceGetPowerUsage(self.handle) / 1e3


def open_nvml(index: int = 0):
    """NVML on GPU `index`, or (None, why) where there is none (no driver, no package)."""
    try:
        return _NVML(index), None
    except Exception as e:  # noqa: BLE001 — any failure means: no energy readings here
        return None, f"{type(e).__name__}: {e}"


class EnergyMeter:
    """Context manager around one timed batch: `.result(n_tokens)` after it exits.

    `source` is an object with `energy_mj()` and `power_w()` (NVML, or a stand-in in tests);
    None makes the meter a no-op whose result says why there is no reading."""

    def __init__(self, source, interval_s: float = 0.01, why_none: str | None = None):
        self.source = source
        self.interval_s = interval_s
        self.why_none = why_none
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.source.power_w()))
            self._stop.wait(self.interval_s)

    def __enter__(self):
        if self.source is None:
            return self
        self.e0 = self.source.energy_mj()
        self.t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.source is None:
            return False
        self.t1 = time.perf_counter()
        self.e1 = self.source.energy_mj()
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter(), self.source.power_w()))
        return False

    def result(self, n_tokens: int) -> dict:
        if self.source is None:
            return {"energy_j": None, "why_none": self.why_none}
        dur = self.t1 - self.t0
        counter = (self.e1 - self.e0) / 1e3 if None not in (self.e0, self.e1) else None
        integral = trapezoid_j(self.samples)
        energy = counter if counter is not None else integral
        powers = [p for _, p in self.samples]
        return {
            "window_s": dur, "energy_j": energy,
            "energy_source": "nvml energy counter" if counter is not None else "power samples",
            "energy_counter_j": counter, "energy_power_integral_j": integral,
            "mean_power_w": energy / dur if energy is not None and dur > 0 else None,
            "mean_sampled_power_w": sum(powers) / len(powers) if powers else None,
            "max_sampled_power_w": max(powers) if powers else None,
            "n_power_samples": len(powers), "output_tokens": n_tokens,
            "j_per_token": energy / n_tokens if energy is not None and n_tokens else None,
        }


def append_energy(folder: Path, record: dict) -> None:
    with open(folder / ENERGY_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def energy_keys(folder: Path) -> set[str]:
    return {r["key"] for r in load_energy(folder)}


def load_energy(folder: Path) -> list[dict]:
    f = Path(folder) / ENERGY_FILE
    if not f.is_file():
        return []
    return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line]


def energy_table(records: list[dict]) -> list[dict]:
    """One row per (target, concurrency): median J/token and mean power over its batches."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("energy_j") is not None:
            groups.setdefault((r["target"], r["concurrency"]), []).append(r)
    rows = []
    for (target, c), rs in sorted(groups.items()):
        jpt = [r["j_per_token"] for r in rs]
        rows.append({"target": target, "concurrency": c, "n_batches": len(rs),
                     "j_per_token": float(np.median(jpt)),
                     "j_per_token_min": float(min(jpt)), "j_per_token_max": float(max(jpt)),
                     "mean_power_w": float(np.median([r["mean_power_w"] for r in rs])),
                     "tokens_per_joule": 1 / float(np.median(jpt)),
                     "window_s": float(np.median([r["window_s"] for r in rs]))})
    return rows


def energy_figure(rows: list[dict], title: str = "Energy per output token"):
    """J/token per target (bars, one colour per concurrency level, log scale)."""
    import matplotlib.pyplot as plt
    import numpy as np

    targets = sorted({r["target"] for r in rows})
    levels = sorted({r["concurrency"] for r in rows})
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(targets) + 1.5))
    h = 0.8 / max(len(levels), 1)
    y = np.arange(len(targets))
    for k, c in enumerate(levels):
        vals = [next((r["j_per_token"] for r in rows if r["target"] == t
                      and r["concurrency"] == c), np.nan) for t in targets]
        ax.barh(y + k * h, vals, height=h, label=f"{c} concurrent")
    ax.set_yticks(y + h * (len(levels) - 1) / 2, targets, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("joules per output token (whole board, NVML energy counter)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def energy_across(snapshots) -> list[dict]:
    """Every snapshot's energy table in one list (`snapshots`: views with "name", "device" and
    "path", as `speed.snapshots.views()` gives them), each row with its snapshot and device and
    the output rate its own energy window implies (mean power ÷ joules per token = tokens/s over
    the timed window, prefill included: a little below the decode rate)."""
    rows = []
    for snap in snapshots:
        for r in energy_table(load_energy(Path(snap["path"]) / "02_speed")):
            rows.append({**r, "snapshot": snap["name"], "device": snap.get("device"),
                         "engine": r["target"].split("/")[1],
                         "tok_s": r["mean_power_w"] / r["j_per_token"]})
    return rows


def energy_speed_figure(rows: list[dict], concurrency: int = 1,
                        title: str = "Energy per output token against output rate, batch 1"):
    """One point per cell at `concurrency` across snapshots: tokens/s (x) against joules per
    output token (y), both log; colour = engine, marker = snapshot, label = model · format
    (where it does not overlap another; the table beside the figure names every point). At
    a near-constant board power the points fall on J/token = P ÷ (tokens/s), so the diagonal
    lines of constant power are drawn for reading it."""
    import matplotlib.pyplot as plt
    import numpy as np

    pts = [r for r in rows if r["concurrency"] == concurrency]
    if not pts:
        raise ValueError(f"no energy rows at concurrency {concurrency}")
    engines = sorted({r["engine"] for r in pts})
    snaps = sorted({r["snapshot"] for r in pts})
    markers = "osD^v<>"
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(9, 6))
    xs = np.array([r["tok_s"] for r in pts])
    for watts in (100, 200, 400, 700):
        x = np.geomspace(xs.min() * 0.7, xs.max() * 1.4, 20)
        ax.plot(x, watts / x, color="0.85", lw=0.8, zorder=0)
        ax.annotate(f"{watts} W", (x[-1], watts / x[-1]), fontsize=7, color="0.55")
    placed: list[tuple[float, float]] = []  # label positions (log10), so labels never overlap
    for r in sorted(pts, key=lambda r: -r["tok_s"]):
        ax.scatter(r["tok_s"], r["j_per_token"], color=colours[engines.index(r["engine"]) % len(colours)],
                   marker=markers[snaps.index(r["snapshot"]) % len(markers)], s=36, zorder=2)
        lx, ly = np.log10(r["tok_s"]), np.log10(r["j_per_token"])
        if all(abs(lx - px) > 0.12 or abs(ly - py) > 0.035 for px, py in placed):
            placed.append((lx, ly))
            model, _, fmt = r["target"].split("/")[:3]
            ax.annotate(f"{model} · {fmt}", (r["tok_s"], r["j_per_token"]), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
    for e in engines:
        ax.scatter([], [], color=colours[engines.index(e) % len(colours)], label=e)
    for s in snaps:
        ax.scatter([], [], color="0.4", marker=markers[snaps.index(s) % len(markers)], label=s)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("output tokens/s over the timed window, prefill included (mean power ÷ J per token)")
    ax.set_ylabel("joules per output token (whole board, NVML)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
