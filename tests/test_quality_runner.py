"""The quality loop on the real embedded model (llama.cpp, one thread, a few samples): resume,
determinism, log-likelihood, and verdicts that are counted apart (format failure, crash)."""

import dataclasses
import json
import math
from pathlib import Path

import pytest

from slmstudy import datasets as D
from slmstudy.evals import chinese, mathx, runner
from slmstudy.evals.runner import Evaluator, Sample, Score, Task
from slmstudy.results import SectionResults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(arts):
    return runner.resolve_target("smollm2_135m", "llamacpp", threads=1, n_ctx=1024)


@pytest.fixture(scope="module")
def items():
    try:
        return {"cmmlu": D.stratified_subset(D.load_cmmlu("test"), 2, "subject"),
                "gsm8k": D.load_gsm8k()[:1]}
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")


def _tasks(items):
    return [
        chinese.mc_task("cmmlu", items["cmmlu"], max_tokens=8),
        chinese.mc_task("cmmlu", items["cmmlu"], mode="loglik", max_tokens=1),
        # one token cannot hold "#### <number>": a real output that must be a format failure
        mathx.gsm8k_task(items["gsm8k"], max_tokens=1),
    ]


def _lines(path):
    return path.read_text(encoding="utf-8").count("\n")


def test_run_resume_and_rerun(target, items, tmp_path):
    tasks = _tasks(items)
    res = SectionResults("r1", "quality", root=tmp_path)
    recs, load_s = runner.run_tasks(target, tasks, res, progress=False)
    assert load_s and load_s > 0
    assert len(recs) == 5 and _lines(res.samples_path) == 5
    by_task = {(r["task"], r["mode"]): [] for r in recs}
    for r in recs:
        by_task[(r["task"], r["mode"])].append(r)
        assert r["verdict"] in runner.VERDICTS and r["target"] == "smollm2_135m/llamacpp"
        assert r["n_prompt"] > 10
        assert r["layout"]["gpus"] == 0 and r["gpus"] == []  # the CPU, one engine (slmstudy.layout)
        # the generative protocols go through the chat template; lm-eval's is plain text
        assert r["prompt_text"].startswith("<|im_start|>") == (r["mode"] == "generate")

    gen = by_task[("cmmlu", "generate")]
    for r in gen:
        assert isinstance(r["raw_output"], str) and 1 <= r["n_tokens"] <= 8
        assert r["ttft_s"] > 0 and r["e2e_s"] >= r["ttft_s"]
        assert r["verdict"] in ("correct", "wrong", "format_failure")
        assert (r["extracted"] is None) == (r["verdict"] == "format_failure")

    for r in by_task[("cmmlu", "loglik")]:
        lp = r["detail"]["continuation_logprobs"]
        assert set(lp) == set("ABCD") and all(v <= 0 and math.isfinite(v) for v in lp.values())
        assert r["extracted"] == max(lp, key=lp.get)
        assert r["verdict"] == ("correct" if r["extracted"] == r["gold"] else "wrong")
        assert r["config"]["protocol"] == "lm-eval/cmmlu" and r["prompt"].endswith("答案：")
        # each continuation " X" is scored as the tokens lm-eval's _encode_pair gives it
        assert all(len(ids) >= 1 for ids in r["detail"]["continuation_ids"].values())

    (ff,) = by_task[("gsm8k", "generate")]
    assert ff["n_tokens"] == 1 and ff["extracted"] is None and ff["verdict"] == "format_failure"
    (row,) = [r for r in runner.summarize(recs) if r["task"] == "gsm8k"]
    assert row["format_failure"] == 1 and row["wrong"] == 0 and row["accuracy"] == 0.0
    assert row["answered"] == 0 and math.isnan(row["accuracy_answered"])

    # resume: a rerun with the same run id appends nothing and loads no model
    again, load_again = runner.run_tasks(target, tasks, res, progress=False)
    assert load_again is None and _lines(res.samples_path) == 5
    assert [r["key"] for r in again] == [r["key"] for r in recs]

    # an immediate fresh rerun (new run id) gives identical outputs and scores (greedy)
    res2 = SectionResults("r2", "quality", root=tmp_path)
    fresh, _ = runner.run_tasks(target, tasks, res2, progress=False)
    for a, b in zip(recs, fresh):
        assert a["key"] == b["key"] and a["prompt_ids_sha256"] == b["prompt_ids_sha256"]
        assert a.get("output_ids") == b.get("output_ids") and a["raw_output"] == b["raw_output"]
        assert a["extracted"] == b["extracted"] and a["verdict"] == b["verdict"]
        if a["mode"] == "loglik":
            for c, v in a["detail"]["continuation_logprobs"].items():
                assert b["detail"]["continuation_logprobs"][c] == pytest.approx(v, abs=1e-4)


def test_interrupted_run_resumes_the_rest(target, items, tmp_path):
    task = chinese.mc_task("cmmlu", items["cmmlu"], max_tokens=4)
    res = SectionResults("r", "quality", root=tmp_path)
    first = dataclasses.replace(task, samples=task.samples[:1])
    runner.run_tasks(target, [first], res, progress=False)
    with open(res.samples_path, "a", encoding="utf-8") as f:
        f.write('{"key": "cut mid-wri')  # a line cut by a kill
    recs, _ = runner.run_tasks(target, [task], res, progress=False)
    assert [r["sample_id"] for r in recs] == [s.id for s in task.samples]
    lines = res.samples_path.read_text().splitlines()
    assert '{"key": "cut mid-wri' in lines  # the cut line is kept, closed, and skipped
    keys = [json.loads(line)["key"] for line in lines if line != '{"key": "cut mid-wri']
    assert len(keys) == len(set(keys)) == 2  # the first sample was not run twice


def test_changed_settings_run_again(target, items, tmp_path):
    res = SectionResults("r", "quality", root=tmp_path)
    a = chinese.mc_task("cmmlu", items["cmmlu"][:1], max_tokens=2)
    b = chinese.mc_task("cmmlu", items["cmmlu"][:1], max_tokens=3)
    runner.run_tasks(target, [a], res, progress=False)
    recs, load_s = runner.run_tasks(target, [b], res, progress=False)
    assert load_s is not None and len(recs) == 1 and _lines(res.samples_path) == 2


def test_engine_crash_is_recorded_apart(target, tmp_path):
    long_prompt = [{"role": "user", "content": "你好" * 1500}]  # longer than n_ctx=1024
    task = Task("long", [Sample("too_long", long_prompt), Sample("ok", [{"role": "user",
                "content": "Hi"}])], scorer=lambda text, s: Score("correct", text),
                max_tokens=2)
    res = SectionResults("r", "quality", root=tmp_path)
    with Evaluator(target, res, progress=False) as ev:
        recs = ev.run(task)
    assert [r["verdict"] for r in recs] == ["crash", "correct"]  # the backend survives
    assert "llama_decode" in recs[0]["detail"]["error"]
    s = runner.summarize_records(recs)
    assert s["crash"] == 1 and s["correct"] == 1 and s["format_failure"] == 0


def test_transformers_loglik_matches_llamacpp_prompt(arts, items, tmp_path):
    tf = runner.resolve_target("smollm2_135m", "transformers", threads=1)
    task = chinese.mc_task("cmmlu", items["cmmlu"][:1], mode="loglik", max_tokens=1)
    res = SectionResults("r", "quality", root=tmp_path)
    (rec,), _ = runner.run_tasks(tf, [task], res, progress=False)
    assert rec["engine"] == "transformers" and rec["extracted"] in "ABCD"
    llama = runner.resolve_target("smollm2_135m", "llamacpp", threads=1, n_ctx=1024)
    assert runner.prompt_ids(tf, task, task.samples[0]) == runner.prompt_ids(llama, task,
                                                                           task.samples[0])


def test_generation_is_cut_at_the_protocols_stop_strings(target, tmp_path):
    # lm-eval's `until`: the scorer sees only the text before the first stop string. The stop
    # string is taken from the model's own unstopped answer, so the premise (the model writes it)
    # holds whatever this small model says.
    messages = [{"role": "user", "content": "Count: 1, 2, 3, 4, 5, 6"}]
    free = Task("free", [Sample("s", messages)], scorer=lambda text, s: Score("correct", text), max_tokens=24)
    (unstopped,), _ = runner.run_tasks(target, [free], SectionResults("r", "quality", root=tmp_path / "a"),
                                       progress=False)
    words = unstopped["raw_output"].split()
    assert len(words) >= 4, unstopped["raw_output"]
    stop = " " + words[3]
    seen = []
    task = Task("stops", [Sample("s", messages)], scorer=lambda text, s: seen.append(text) or Score("correct", text),
                max_tokens=24, stop=(stop,))
    (rec,), _ = runner.run_tasks(target, [task], SectionResults("r", "quality", root=tmp_path / "b"), progress=False)
    expected = unstopped["raw_output"].split(stop)[0]
    assert seen == [expected] and rec["finish_reason"] == "stop_string", (seen, expected)
    assert rec["detail"]["stop_string"] == stop and rec["config"]["stop"] == [stop]


def test_a_loglik_task_without_continuations_is_refused():
    with pytest.raises(Exception, match="scores `continuations`"):
        Task("x", [Sample("s", [])], mode="loglik")


def test_engine_without_logits_refuses_loglik():
    from slmstudy.backends.base import Backend

    class NoLogits(Backend):
        name = "nologits"

        def _load(self):
            pass

        def _stream(self, req):
            yield from ()

    b = NoLogits("/tmp")
    b._loaded = True
    assert not NoLogits.supports_loglik()
    with pytest.raises(Exception, match="does not expose logits"):
        b.loglikelihood([([1, 2], [3])])


def test_real_model_elsewhere_needs_a_path():
    with pytest.raises(Exception, match="no local weights for model 'qwen25_7b'"):
        runner.resolve_target("qwen25_7b", "llamacpp")


def test_quality_engine_options_are_typed_and_reach_the_engine(tmp_path):
    """A target's `options` are validated against the engine's options model at params time (a
    misspelt option names itself, the engine and what it accepts), and the valid ones override
    the section's defaults."""
    from slmstudy.errors import ParamsError
    from slmstudy.params import validate

    base = {"targets": [{"model": "smollm2_135m", "engine": "llamacpp",
                         "options": {"n_batchh": 64}}]}
    with pytest.raises(ParamsError, match=r"unknown option 'n_batchh'.*accepts: .*n_batch"):
        validate("04_math", base)
    p = validate("04_math", {"targets": [{"model": "smollm2_135m", "engine": "llamacpp",
                                          "options": {"n_batch": 64}}], "n_ctx": 1024})
    t = runner.target_from_spec(p.targets[0], p)
    assert t.options.n_batch == 64 and t.options.n_ctx == 1024  # override + section default


def test_a_target_limit_scores_a_nested_parity_subset():
    """`limit` keeps each task's first items, under the same record keys as the full run, so a
    slow engine's answers pair with the fast engine's on those items."""
    from slmstudy.evals.runner import EvalTarget, Sample, Task, record_key, select_tasks
    from slmstudy.params import QualityTarget

    task = Task("t", [Sample(f"s{i}", [{"role": "user", "content": str(i)}]) for i in range(5)],
                scorer=lambda text, sample: None)
    full = select_tasks([task], QualityTarget(engine="llamacpp"))[0]
    part = select_tasks([task], QualityTarget(engine="llamacpp", limit=2))[0]
    assert [s.id for s in part.samples] == ["s0", "s1"] and len(full.samples) == 5
    target = EvalTarget("m", "llamacpp", Path("."), Path("."))
    assert part.config_id == full.config_id
    assert record_key(part, target, "s1") == record_key(full, target, "s1")
