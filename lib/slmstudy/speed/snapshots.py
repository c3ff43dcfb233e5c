"""Committed GPU snapshots (results/<name>/) as the speed notebook shows them: each one's batch-1
table, roofline and concurrency figures, its kernel profile where it has one, and the articles'
GPU claims scaled from it (`claims.scaling`). The notebook calls :func:`show` in one line."""

from __future__ import annotations

from .. import plotting, profiling
from ..claims import scaling

BATCH1_COLUMNS = ["target", "ttft_s", "ttft_s_ci_low", "ttft_s_ci_high", "decode_tok_s",
                  "decode_tok_s_ci_low", "decode_tok_s_ci_high", "roofline_fraction"]
CLAIM_COLUMNS = ["claim", "hardware", "claimed_tok_s", "expected_tok_s", "roofline_tok_s", "verdict"]
PROFILE_INTRO = (
    "#### Where a decode step's time goes (kernel profile)\n"
    "Kernels recorded with the PyTorch profiler (CUPTI sees every kernel of the process, "
    "llama.cpp's and vLLM's included) for a forced generation of N+1 and of 1 token; the "
    "difference ÷ N is one decode step's kernel time. Wall time per token is from an "
    "unprofiled run of the same length. *Roofline* = bytes read per token ÷ measured "
    "bandwidth; *matmul kernels vs bandwidth* = that roofline time ÷ the matmul kernels' "
    "own time. Made by `SLM_PROFILE=<model> SLM_PROFILE_ENGINES=<engine> bash scripts/gpu/speed.sh "
    "profile` (`slmstudy.profiling`; the H100 one by the earlier `scripts/gpu/h100_speed.sh`); "
    "provenance in `profile/provenance.json` or the snapshot's.")


def views() -> list[dict]:
    """Each committed GPU snapshot: name, device, measured bandwidth, summary rows, kernel profile."""
    out = []
    for snap in scaling.snapshots():
        speed = snap.sections["02_speed"]
        out.append({"name": snap.name, "device": snap.device, "path": snap.path,
                    "bandwidth_bytes_s": speed["bandwidth"]["bandwidth_bytes_s"],
                    "rows": speed["rows"], "profile": profiling.load_profile(snap.path)})
    return out


def show(snapshot_claims: dict[str, list[dict]]) -> None:
    """Display every snapshot (tables, figures saved with captions, profile, scaled claims);
    `snapshot_claims` is the speed summary's block of the same name."""
    import pandas as pd
    from IPython.display import Markdown, display

    from ..tables import with_intervals
    from .figures import concurrency_figure, roofline_figure

    for snap in views():
        name, gpu, bw = snap["name"], snap["device"], snap["bandwidth_bytes_s"]
        display(Markdown(f"### Snapshot `{name}` — {gpu}, measured bandwidth {bw / 1e9:.0f} GB/s"))
        rows = pd.DataFrame(snap["rows"])
        # where a snapshot spreads a model over several GPUs, its rows say over how many and how
        multi = "gpus" in rows and rows["gpus"].fillna(1).max() > 1
        cols = BATCH1_COLUMNS + (["layout", "gpus", "roofline_tok_s"] if multi else [])
        display(with_intervals(rows[rows.concurrency == 1][cols]))
        fig = roofline_figure(snap["rows"], bw, f"{name} ({gpu}): decode vs roofline")
        plotting.show(fig, f"02_speed_roofline_{name}",
                      caption=f"{name} ({gpu}): batch-1 decode tokens/s per target (median, 95% CI) "
                              "against its roofline, bandwidth ÷ bytes read per token")
        if rows.concurrency.max() > 1:
            fig = concurrency_figure(snap["rows"], f"{name} ({gpu}): concurrency")
            plotting.show(fig, f"02_speed_concurrency_{name}",
                          caption=f"{name} ({gpu}): aggregate output tokens/s and each request's decode "
                                  "speed against concurrent requests")
        if snap["profile"]:
            display(Markdown(PROFILE_INTRO))
            display(pd.DataFrame(profiling.breakdown_rows(snap["profile"])).drop(columns="_bars").round(3))
            fig = profiling.breakdown_figure(snap["profile"], f"{name} ({gpu}): where a decode step goes")
            plotting.show(fig, f"02_speed_breakdown_{name}",
                          caption=f"{name} ({gpu}): where a batch-1 decode step's time goes "
                                  "(PyTorch-profiler kernel time by kind, GPU idle)")
            display(Markdown(profiling.findings(snap["profile"])))
        show_gpu_extras(snap)
        _show_claims(snapshot_claims.get(f"snapshot {name}") or [], f"snapshot `{name}`")
    _show_profiles_side_by_side(views())
    _show_energy_across(views())
    for source, scaled in snapshot_claims.items():
        if not source.startswith("snapshot "):
            _show_claims(scaled, source)


ENERGY_ACROSS_INTRO = (
    "#### Energy per token across the snapshots\n"
    "Every batch-1 cell of every snapshot that recorded NVML energy, in one figure: the output "
    "rate over the timed window (prefill included) against joules per output token. The grey "
    "lines are constant board power: along one, a cell further right decodes faster for the same "
    "watts, so each token costs less. (`speed.energy.energy_across`, `energy_speed_figure`)")
ENERGY_ACROSS_COLUMNS = ["snapshot", "target", "concurrency", "tok_s", "j_per_token", "mean_power_w",
                         "n_batches"]


def _show_energy_across(snaps: list[dict]) -> None:
    import pandas as pd
    from IPython.display import Markdown, display

    from .energy import energy_across, energy_speed_figure

    rows = energy_across(snaps)
    if not any(r["concurrency"] == 1 for r in rows):
        return
    display(Markdown(ENERGY_ACROSS_INTRO))
    fig = energy_speed_figure(rows)
    plotting.show(fig, "02_speed_energy_across_snapshots",
                  caption="Joules per output token against decode rate, batch 1, every snapshot with "
                          "NVML energy")
    table = pd.DataFrame([r for r in rows if r["concurrency"] == 1])[ENERGY_ACROSS_COLUMNS]
    display(table.sort_values("j_per_token").round(3))


SIDE_BY_SIDE_COLUMNS = ["target", "snapshot", "wall ms/token", "decode tok/s", "roofline ms",
                        "roofline fraction", "matmul kernels vs bandwidth", "other kernels ms",
                        "GPU idle ms"]


def profiles_side_by_side(snaps: list[dict]) -> list[dict]:
    """The kernel-profile rows of every target profiled on more than one GPU snapshot, each row
    relabelled `<model>/<engine>/<format> · <snapshot>/replica` so one breakdown figure shows the
    GPUs next to each other; plus `snapshot` and the row's own target under `profiled_target`."""
    by_target: dict[str, list[tuple[str, dict]]] = {}
    for snap in snaps:
        for r in snap["profile"]:
            by_target.setdefault(r["target"], []).append((snap["name"], r))
    out = []
    for target, rows in by_target.items():
        if len({name for name, _ in rows}) < 2:
            continue
        parts = target.split("/")
        for name, r in rows:
            label = "/".join(parts[:2] + [f"{parts[2]} · {name}"] + parts[3:])
            out.append({**r, "target": label, "snapshot": name, "profiled_target": target})
    return out


def _show_profiles_side_by_side(snaps: list[dict]) -> None:
    import pandas as pd
    from IPython.display import Markdown, display

    both = profiles_side_by_side(snaps)
    if not both:
        return
    display(Markdown(
        "### The same targets profiled on each GPU\n"
        "Targets whose decode step was profiled on more than one snapshot, side by side (same "
        "method, same replica, same engine configuration; each GPU's own measured bandwidth sets "
        "its roofline)."))
    table = pd.DataFrame(profiling.breakdown_rows(both)).drop(columns="_bars")
    table.insert(1, "snapshot", [r["snapshot"] for r in both])
    display(table[[c for c in SIDE_BY_SIDE_COLUMNS if c in table]].round(3))
    fig = profiling.breakdown_figure(both, "Where a decode step goes, GPU against GPU")
    plotting.show(fig, "02_speed_breakdown_side_by_side",
                  caption="Decode-step breakdown of the targets profiled on more than one GPU")


def _show_claims(scaled: list[dict], source: str) -> None:
    """The ledger's decode-speed claims that `source`'s rows decide, with the arithmetic."""
    import pandas as pd
    from IPython.display import Markdown, display

    if not scaled:
        return
    display(Markdown(f"#### The articles' speed claims that {source} decides (the ledger's verdicts)"))
    display(pd.DataFrame(scaled)[CLAIM_COLUMNS].round(1))
    display(Markdown("\n".join(f"- `{r['claim']}`: {r['arithmetic']} → **{r['verdict']}**" for r in scaled)))


GPU_EXTRAS_INTRO = (
    "#### The engines' own clocks, energy per token, context length\n"
    "Our TTFT/decode against vLLM's request stats and llama.cpp's perf counters (agree = within "
    "3% or 1 ms); our batch-1 TTFT against `vllm bench latency` (output length 1) on the same "
    "engine; NVML joules per output token; the context-length sweep. Tables by "
    "`python -m slmstudy.speed.gpu_snapshot results/<snapshot>` (`speed.gpu_snapshot`).")


def show_gpu_extras(snap: dict) -> None:
    """The tables a GPU snapshot made by scripts/gpu/speed.sh adds (speed.gpu_snapshot), where
    it has them: clock agreement, `vllm bench latency`, energy and context figures."""
    import pandas as pd
    from IPython.display import Markdown, display

    from .context import context_figure
    from .energy import energy_figure
    from .gpu_snapshot import COLUMNS, snapshot_tables

    t = snapshot_tables(snap["path"])
    if not any(t[k] for k in ("clock_agreement", "bench_latency", "energy", "context")):
        return
    name = snap["name"]
    display(Markdown(GPU_EXTRAS_INTRO))
    for key in ("clock_agreement", "bench_latency", "engine_config"):
        if t[key]:
            display(pd.DataFrame(t[key])[[c for c in COLUMNS[key] if c in t[key][0]]].round(3))
    if t["energy"]:
        plotting.show(energy_figure(t["energy"], f"{name}: joules per output token"), f"02_speed_energy_{name}",
                      caption=f"{name}: whole-board energy (NVML counter) per output token, by concurrency")
    if t["context"]:
        display(pd.DataFrame(t["context"])[[c for c in COLUMNS["context"] if c in t["context"][0]]].round(4))
        plotting.show(context_figure(t["context"], f"{name}: TTFT and decode against prompt length"),
                      f"02_speed_context_{name}",
                      caption=f"{name}: TTFT, decode tok/s and KV-cache size against prompt length")
