"""The tables a committed GPU snapshot adds beside its speed summary (results/<device>-<date>/):
our clock against each engine's own, against `vllm bench latency`, energy per output token, the
context-length sweep and each engine's resolved configuration.

    python -m slmstudy.speed.gpu_snapshot results/h200-2026-12-01     # the tables, as markdown

Every number in the README's GPU paragraphs comes from this command.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import StudyError
from ..results import load_summary
from . import clock, energy
from .context import context_table, load_context


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def snapshot_tables(folder: str | Path) -> dict[str, list[dict]]:
    """Tables of one snapshot folder (those whose files it has; the others are empty)."""
    d = Path(folder) / "02_speed"
    if not (d / "summary.json").is_file():
        raise StudyError(f"{folder} has no 02_speed/summary.json; give a snapshot folder such as "
                         "results/h200-2026-12-01")
    summary = load_summary(d / "summary.json")
    records = _jsonl(d / "samples.jsonl")
    rows = summary["rows"]
    batch1 = [{"target": r["target"], "ttft_ms": r["ttft_s"] * 1e3,
               "decode_tok_s": r["decode_tok_s"],
               "decode_ci": (r["decode_tok_s_ci_low"], r["decode_tok_s_ci_high"]),
               "read_gb": r["bytes_read_per_token"] / 1e9,
               "roofline_fraction": r.get("roofline_fraction")}
              for r in rows if r["mode"] == "inproc" and r["concurrency"] == 1]
    concurrent = [{"target": r["target"], "concurrency": r["concurrency"],
                   "aggregate_tok_s": r["aggregate_tok_s"], "ttft_ms": r["ttft_s"] * 1e3}
                  for r in rows if r["mode"] == "inproc" and r["concurrency"] > 1]
    configs = [{"target": c["target"], "load_s": c["load_s"],
                **({k: v for k, v in (c.get("resolved") or {}).items() if k != "llm_kwargs"}
                   or {"options": c["options"]})}
               for c in _jsonl(d / "engine_config.jsonl")]
    return {
        "batch1": batch1,
        "concurrent": concurrent,
        "clock_agreement": clock.agreement_table(records),
        "bench_latency": clock.reference_table(_jsonl(d / "reference_latency.jsonl"), rows),
        "energy": energy.energy_table(energy.load_energy(d)),
        "context": context_table(load_context(d)),
        "engine_config": configs,
        "errors": _jsonl(d / "errors.jsonl"),
    }


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def markdown(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "(none)"
    cols = columns or list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


COLUMNS = {
    "clock_agreement": ["target", "concurrency", "n_requests", "ours_ttft_ms", "engine_ttft_ms",
                        "max_ttft_gap_ms", "ttft_within", "ours_decode_tok_s",
                        "engine_decode_tok_s", "max_decode_gap", "decode_within"],
    "bench_latency": ["target", "ours_ttft_ms", "bench_latency_ms", "gap_ms", "within"],
    "energy": ["target", "concurrency", "n_batches", "j_per_token", "mean_power_w",
               "window_s"],
    "context": ["target", "prompt_tokens", "n_requests", "ttft_s", "engine_ttft_s",
                "prefill_tok_s", "decode_tok_s", "kv_cache_gib", "j_per_output_token"],
    "engine_config": ["target", "load_s", "quantization", "max_num_seqs",
                      "cudagraph_capture_sizes_max", "async_scheduling", "kv_cache_tokens"],
}


def _main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="a GPU snapshot's tables as markdown")
    ap.add_argument("folder", help="e.g. results/h200-2026-12-01")
    a = ap.parse_args(argv)
    for name, rows in snapshot_tables(a.folder).items():
        print(f"\n## {name}\n")
        print(markdown(rows, COLUMNS.get(name)))


if __name__ == "__main__":
    _main()
