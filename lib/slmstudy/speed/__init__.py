"""The speed section: batch-1 timing, concurrency sweeps in-process and over HTTP, roofline.

Every request is one record in samples.jsonl (appended as it completes; a rerun skips records
already there). Summaries — medians with bootstrap 95% CIs, ITL percentiles, roofline fractions —
are derived from the records by :func:`summarize`; the notebook and `python -m slmstudy.speed`
write the same summary (:func:`section_summary`).

    bandwidth   the hardware limit (measured once per results folder)
    targets     what each engine loads, bytes read per token, run context, prompts
    run         in-process and HTTP runs, the headless section
    summary     summaries, the engines' own clocks, GPU snapshots, findings
    figures     roofline and concurrency figures
    snapshots   committed GPU snapshots, shown with their profiles and scaled claims
"""

from .bandwidth import cached_bandwidth, measure_bandwidth
from .figures import concurrency_figure, roofline_figure
from .run import run_http, run_inprocess, run_section
from .snapshots import show as show_snapshots
from .snapshots import views as snapshot_views
from .summary import (
                      AGREEMENT_TOL,
                      agreement_finding,
                      compare_with_vllm_bench,
                      findings,
                      llamacpp_clock_agreement,
                      section_summary,
                      snapshot_claims,
                      summarize,
                      vllm_bench_results,
)
from .targets import (
                      ResolvedTarget,
                      check_targets_fit,
                      engine_options,
                      preflight,
                      resolve_target,
                      run_context,
                      salted,
                      synthetic_prompt,
                      target_table,
)

__all__ = ["AGREEMENT_TOL", "ResolvedTarget", "agreement_finding", "cached_bandwidth",
           "check_targets_fit", "compare_with_vllm_bench", "concurrency_figure", "engine_options",
           "findings", "llamacpp_clock_agreement", "measure_bandwidth", "preflight",
           "resolve_target", "roofline_figure", "run_context", "run_http", "run_inprocess",
           "run_section", "salted", "section_summary", "show_snapshots", "snapshot_claims", "snapshot_views",
           "summarize", "synthetic_prompt", "target_table", "vllm_bench_results"]
