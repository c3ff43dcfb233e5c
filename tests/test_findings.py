"""The findings cells are generated from summaries: they name the right leader, and say when
the intervals do not separate the targets."""

from slmstudy import deployment, speed
from slmstudy.evals import views


def _row(target, acc, lo, hi, n=20, ff=0):
    return {"task": "cmmlu", "target": target, "mode": "loglik", "accuracy": acc, "ci_low": lo,
            "ci_high": hi, "n": n, "format_failure": ff}


def test_quality_findings_name_a_leader_only_when_intervals_separate():
    sep = views.findings({"n_records": 40, "rows": [_row("a", 0.2, 0.1, 0.3),
                                                     _row("b", 0.8, 0.6, 0.9, ff=1)]},
                         chance={"cmmlu": 0.25})
    assert "b [loglik] leads" in sep and "1 format failure" in sep and "failures" not in sep
    assert "b [loglik] 80% [60%, 90%] (n=20) above chance" in sep
    assert "a [loglik] 20% [10%, 30%] (n=20) not above chance" in sep
    overlap = views.findings({"n_records": 40, "rows": [_row("a", 0.4, 0.2, 0.6),
                                                         _row("b", 0.5, 0.3, 0.7)]})
    assert "no winner" in overlap and "leads" not in overlap


def test_speed_findings_pick_the_fastest_and_flag_length_failures():
    rows = [{"target": t, "mode": "inproc", "concurrency": 1, "decode_tok_s": d,
             "decode_tok_s_ci_low": d - 1, "decode_tok_s_ci_high": d + 1, "ttft_s": ttft,
             "roofline_fraction": f, "length_ok": ok}
            for t, d, ttft, f, ok in (("x", 10.0, 0.5, 0.2, True), ("y", 30.0, 0.9, 0.6, False))]
    text = speed.findings({"rows": rows, "params": {"prompt_tokens": 64},
                           "llamacpp_clock_agreement": [{"ratio": 0.85}],
                           "vllm_bench_validation": []})
    assert "**y**, 30.0 tok/s [29.0, 31.0]" in text
    assert "Lowest TTFT (64-token prompt): x, 500 ms" in text
    assert "**15.0%** (over 10%)" in text and "Forced length not met** by ['y']" in text


def test_deployment_findings_list_features_that_fail_somewhere():
    s = {"loads": [{"engine": "a", "kind": "cold", "load_s": 1.0, "peak_rss_MB": 500},
                   {"engine": "b", "kind": "cold", "load_s": 9.0, "peak_rss_MB": 300}],
         "features": [{"server": "s1", "feature": "JSON mode", "ok": True},
                      {"server": "s2", "feature": "JSON mode", "ok": False},
                      {"server": "s1", "feature": "streaming", "ok": True},
                      {"server": "s2", "feature": "streaming", "ok": True}]}
    text = deployment.findings(s)
    assert "fastest a 1.00 s, slowest b 9.00 s; least memory b" in text
    assert "JSON mode: works on s1; fails on s2" in text and "streaming" not in text
