"""Notebooks 03–05: committed form (no outputs, one literal parameters cell, validated next),
and a papermill run with the smoke parameters, asserting on the results files."""

import ast
import json
import uuid

import nbformat
import pytest
import yaml

from slmstudy.evals.runner import VERDICTS
from slmstudy.params import load_params
from slmstudy.paths import NOTEBOOKS_DIR, PARAMS_DIR, REPO_ROOT

NOTEBOOKS = ["03_chinese_quality", "04_math", "05_code"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_form(name):
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    cell = nb.cells[params[0]]
    for node in ast.parse(cell.source).body:  # literals only
        assert isinstance(node, ast.Assign), ast.dump(node)
        ast.literal_eval(node.value)
    nxt = nb.cells[params[0] + 1]
    assert f'validate("{name}"' in nxt.source
    # the notebook's literals and the default params file name the same keys
    names = {t.id for n in ast.parse(cell.source).body for t in n.targets}
    default = yaml.safe_load((PARAMS_DIR / "default" / f"{name}.yaml").read_text())
    assert names == set(default)
    for scenario in ("default", "smoke"):
        load_params(name, scenario)  # both validate


def _expected_samples(name, p):
    """Records a smoke run must write: a base model (no chat template) runs only the text
    protocols (log-likelihood, lm-eval's gsm8k, HumanEval completion)."""
    from slmstudy.models import get_model

    chat = [not get_model(t["model"]).base_model for t in p["targets"]]
    if name == "03_chinese_quality":
        from slmstudy.evals.chinese import load_zh_tasks

        gen = sum(t["generate"] and c for t, c in zip(p["targets"], chat))
        ll = sum(t["loglik"] for t in p["targets"])
        zh = len([t for t in load_zh_tasks()["tasks"]
                  if not p["zh_categories"] or t["category"] in p["zh_categories"]])
        return (p["cmmlu_n"] + p["ceval_n"]) * (gen + ll) + (zh * gen if p["zh_tasks"] else 0)
    if name == "04_math":
        chat_tasks = p["gsm8k_n"] * bool(p.get("gsm8k_chat", True)) + p["math500_n"]
        text_tasks = p["gsm8k_n"] * (1 + bool(p.get("gsm8k_cot", True)))  # lm-eval gsm8k, gsm8k_cot
        return sum(text_tasks + chat_tasks * c for c in chat)
    text = p["humaneval_n"] * bool(p.get("humaneval_completion", True))
    chat_tasks = p["humaneval_n"] + p["mbpp_n"] + p["bfcl_n"] * len(p["bfcl_languages"])
    chat_tasks += p["bfcl_n"] * ("python" in p["bfcl_languages"])  # BFCL's own AST protocol
    return sum(text + chat_tasks * c for c in chat)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_smoke_params(name, tmp_path, monkeypatch, arts):
    import papermill

    try:
        from slmstudy.datasets import data_dir

        data_dir()
    except Exception as e:
        pytest.skip(f"benchmark data not available: {e}")
    monkeypatch.setenv("SLMSTUDY_RUNS", str(tmp_path / "runs"))  # inherited by the kernel
    params = yaml.safe_load((PARAMS_DIR / "smoke" / f"{name}.yaml").read_text())
    params["run_id"] = f"pytest-{uuid.uuid4().hex[:8]}"
    papermill.execute_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"),
                               str(tmp_path / f"{name}.ipynb"), parameters=params,
                               kernel_name="python3", cwd=str(REPO_ROOT), progress_bar=False)
    section = tmp_path / "runs" / params["run_id"] / name
    records = [json.loads(line) for line in (section / "samples.jsonl").read_text().splitlines()]
    assert len(records) == _expected_samples(name, params) > 0
    assert len({r["key"] for r in records}) == len(records)
    for r in records:
        assert r["verdict"] in VERDICTS and r["section"] == name
        if r["mode"] == "generate" and r["verdict"] != "crash":
            assert isinstance(r["raw_output"], str) and r["n_tokens"] >= 1 and r["ttft_s"] > 0

    summary = json.loads((section / "summary.json").read_text())
    assert {"rows", "params", "n_records", "verdicts", "targets", "data"} <= set(summary)
    assert summary["n_records"] == len(records) and summary["params"]["run_id"] == params["run_id"]
    assert sum(row["n"] for row in summary["rows"]) == len(records)
    for row in summary["rows"]:
        assert sum(row[v] for v in VERDICTS) == row["n"]
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
        assert row["correct"] == sum(r["verdict"] == "correct" for r in records
                                     if (r["task"], r["target"], r["mode"]) ==
                                     (row["task"], row["target"], row["mode"]))
    # every sample names the reference protocol it was scored under
    assert all((r.get("config") or {}).get("protocol") for r in records if r["task"] != "zh_tasks")
    if name == "03_chinese_quality" and params.get("peer_lmeval"):
        # lm-eval on the same items: every prompt byte-identical, every answer the same
        for row in summary["peer_lmeval"]["by_target"]:
            assert row["n"] > 0 and row["prompts_identical"] == row["n"], summary["peer_lmeval"]
            if row["target"].endswith("/transformers"):  # the same weights and arithmetic as lm-eval's HF
                assert row["answers_agree"] == row["n"], summary["peer_lmeval"]
    prov = json.loads((section / "provenance.json").read_text())
    assert prov["git"]["commit"] and prov["params"]["run_id"] == params["run_id"]
    assert all(t["load_s"] for t in summary["targets"])
