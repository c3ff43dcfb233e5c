"""The study against a peer no one here wrote: lm-evaluation-harness (its own cmmlu /
ceval-valid task files, HF backend, offline) on the same items, item by item."""

import pytest

from slmstudy import datasets as D
from slmstudy.evals import chinese, peer, runner
from slmstudy.results import SectionResults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tasks():
    try:
        cm = D.stratified_subset(D.load_cmmlu("test"), 12, "subject", seed=1)
        ce = D.stratified_subset(D.load_ceval("val"), 8, "subject", seed=1)
        return [chinese.mc_task("cmmlu", cm, dev=D.load_cmmlu("dev"), shots=5, mode="loglik"),
                chinese.mc_task("ceval", ce, dev=D.load_ceval("dev"), shots=5, mode="loglik")]
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")


def test_lm_eval_agrees_item_by_item_with_byte_identical_prompts(arts, tasks, tmp_path):
    if peer.lmeval_version() is None:
        pytest.fail("lm-eval is not installed; it is in requirements/base.in (run `make setup`)")
    target = runner.resolve_target("smollm2_135m", "transformers", threads=2)
    res = SectionResults("p", "03_chinese_quality", root=tmp_path)
    records, _ = runner.run_tasks(target, tasks, res, progress=False)
    out = peer.section_peer(tasks, records, res.dir, arts.hf, model="smollm2_135m", num_fewshot=5)
    (row,) = out["by_target"]
    assert row["n"] == 20
    # the protocol is lm-eval's exactly: every prompt byte-identical to lm-eval's context
    assert row["prompts_identical"] == 20, out["differ"]
    # and the chosen answers agree on at least 99% of items (here: all of 20)
    assert row["answers_agree"] == 20, out["differ"]
    # the cache: a second call with the same items does not run lm-eval again
    cache = res.dir / "peer_lmeval.json"
    mtime = cache.stat().st_mtime_ns
    again = peer.section_peer(tasks, records, res.dir, arts.hf, model="smollm2_135m", num_fewshot=5)
    assert again["by_target"] == out["by_target"] and cache.stat().st_mtime_ns == mtime


def test_compare_names_the_items_that_differ():
    recs = [{"sample_id": "a", "task": "cmmlu", "target": "m/e", "prompt": "P", "gold": "A",
             "extracted": "A", "detail": {"continuation_logprobs": {"A": -1.0, "B": -2.0, "C": -3, "D": -4}}},
            {"sample_id": "b", "task": "cmmlu", "target": "m/e", "prompt": "Q", "gold": "B",
             "extracted": "C", "detail": {"continuation_logprobs": {"A": -1.0, "B": -2.0, "C": -0.5, "D": -4}}}]
    theirs = {"a": {"context": "P", "logprobs": {"A": -1.0, "B": -2.0, "C": -3.0, "D": -4.0}, "choice": "A"},
              "b": {"context": "Q ", "logprobs": {"A": -1.0, "B": -0.9, "C": -3.0, "D": -4.0}, "choice": "B"}}
    rows, totals = peer.compare(recs, theirs)
    assert totals["n"] == 2 and totals["answers_agree"] == 1 and totals["differ"] == ["b"]
    assert totals["prompts_identical"] == 1 and rows[1]["max_abs_logprob_gap"] == pytest.approx(2.5)


def test_lm_eval_gsm8k_and_gsm8k_cot_same_prompts_shots_and_answers(arts, tmp_path):
    """lm-eval's gsm8k draws its 5 train-split shots with its own seeded sampler, gsm8k_cot uses
    its 8 fixed exemplars; the study reproduces both, so the prompts are byte-identical, and the
    greedy generations (cut at "Question:" / "Q:") and strict answers are the same. Through
    notebook 04's own entry point, with a lower budget passed to lm-eval as --gen_kwargs."""
    from slmstudy.evals import mathx

    try:
        items = D.seeded_subset(D.load_gsm8k(), 3, 0)
        train = D.load_gsm8k(split="train")
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")
    tasks = [mathx.gsm8k_lmeval_task(items, train, shots=5),
             mathx.gsm8k_cot_lmeval_task(items, max_tokens=160)]
    target = runner.resolve_target("smollm2_135m", "transformers", threads=2)
    res = SectionResults("p", "04_math", root=tmp_path)
    records, _ = runner.run_tasks(target, tasks, res, progress=False)
    gsm = [r for r in records if r["task"] == "gsm8k"]
    assert all(r["finish_reason"] == "stop_string" for r in gsm)  # generation ends at "Question:"
    out = peer.section_peer_generative(tasks, records, res.dir, arts.hf, model="smollm2_135m",
                                       train=train)
    assert [(r["task"], r["n"]) for r in out["by_target"]] == [("gsm8k", 3), ("gsm8k_cot", 3)]
    for row in out["by_target"]:
        assert row["prompts_identical"] == 3 and row["texts_identical"] == 3, out["differ"]
        assert row["answers_agree"] == 3, out["differ"]
    with pytest.raises(Exception, match="no lm-eval peer"):
        peer.write_gsm8k_task(tmp_path / "x", items, train, task="math500")


