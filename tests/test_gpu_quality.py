"""The committed GPU quality snapshot (scripts/gpu/quality.sh) and how the notebooks show it
beside their own run."""

import json

import pytest

from slmstudy import datasets as D
from slmstudy.evals import views
from slmstudy.paths import RESULTS_DIR

SNAP = RESULTS_DIR / "h200-2026-12-03-quality"


def test_the_gpu_snapshot_scored_every_item_of_each_benchmark_it_ran():
    """Full sets: each task's item count is the benchmark's size in the data this repo checks
    (MANIFEST.json sha256), and every record is in the committed samples."""
    try:
        sizes = {"gsm8k": len(D.load_gsm8k()), "math500": len(D.load_math500()),
                 "humaneval": len(D.load_humaneval()), "mbpp": len(D.load_mbpp(split="test")),
                 "cmmlu": len(D.load_cmmlu("test")),
                 **{f"bfcl_simple_{lang}": len(D.load_bfcl(lang)) for lang in ("python", "java", "javascript")}}
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")
    base = {"gsm8k_chat": "gsm8k", "gsm8k_cot": "gsm8k", "humaneval_completion": "humaneval",
            "bfcl_ast_python": "bfcl_simple_python"}
    seen = 0
    for section in ("03_chinese_quality", "04_math", "05_code"):
        summary = json.loads((SNAP / section / "summary.json").read_text())
        assert summary["n_records"] == sum(r["n"] for r in summary["rows"])
        for r in summary["rows"]:
            assert r["n"] == sizes[base.get(r["task"], r["task"])], (section, r["task"])
            seen += 1
    assert seen == 12  # CMMLU; GSM8K × 3 and MATH-500; HumanEval × 2, MBPP, BFCL × 4


def test_snapshot_rows_sit_beside_this_runs_rows_for_the_same_model_task_and_mode(tmp_path):
    snap = tmp_path / "gpu-2026-01-01-quality"
    (snap / "04_math").mkdir(parents=True)
    (snap / "device.txt").write_text("name, driver_version\nNVIDIA X1, 1.0\n")
    row = {"task": "gsm8k", "mode": "generate", "target": "m1/vllm", "n": 1319, "accuracy": 0.5,
           "ci_low": 0.47, "ci_high": 0.53, "format_failure": 3}
    (snap / "04_math" / "summary.json").write_text(json.dumps({"rows": [row, {**row, "target": "m2/vllm"}]}))
    (tmp_path / "speed-only" / "04_math").mkdir(parents=True)  # a speed summary is not a quality one
    (tmp_path / "speed-only" / "04_math" / "summary.json").write_text(json.dumps({"bandwidth": {}, "rows": []}))
    here = [{**row, "target": "m1/llamacpp", "n": 15, "accuracy": 0.2, "ci_low": 0.07, "ci_high": 0.45},
            {**row, "task": "math500", "target": "m1/llamacpp", "n": 10}]
    df = views.beside_snapshots("04_math", here, root=tmp_path)
    assert list(df["device"]) == ["NVIDIA X1"] * 2 and list(df["items"]) == [1319, 1319]
    assert list(df["this run"]) == ["llamacpp: 0.200 [0.070, 0.450] on 15", "not run here"]
    assert df["accuracy [95% CI]"][0] == "0.500 [0.470, 0.530]"
    assert "no committed GPU quality snapshot" in views.beside_snapshots("05_code", here, root=tmp_path)
