"""A peer that no one here wrote: lm-evaluation-harness scores the same items under its own
task configs, and the study's records are compared with its, item by item.

lm-eval (PyPI `lm-eval`, its HF backend, offline) runs its own `cmmlu_<subject>` /
`ceval-valid_<subject>` task files — included from the installed package, so the description,
template, few-shot sampler and metric are lm-eval's, not ours — with only the data source
replaced by local JSONL files holding exactly the study's items (and each subject's dev split
for the shots). :func:`compare` then checks, per item, that the study's prompt is byte-identical
to lm-eval's context and that both chose the same answer; where they differ it keeps both
log-likelihoods so the reason can be read.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import yaml

from ..errors import StudyError

#: lm-eval's task file per benchmark of ours, and the field names its template reads
LMEVAL_TASKS = {
    "cmmlu": {"file": "cmmlu/cmmlu_{subject}.yaml", "test_split": "test",
              "fields": {"question": "Question", "answer": "Answer"}},
    "ceval": {"file": "ceval/ceval-valid_{subject}.yaml", "test_split": "val",
              "fields": {"question": "question", "answer": "answer"}},
}
#: lm-eval's gsm8k: its task file, with the local test items and the whole local train split
LMEVAL_GSM8K_FILE = "gsm8k/gsm8k.yaml"
#: the study's generative text tasks -> lm-eval's task file (same items, lm-eval's own config)
LMEVAL_GENERATIVE = {"gsm8k": LMEVAL_GSM8K_FILE, "gsm8k_cot": "gsm8k/gsm8k-cot.yaml"}


def lmeval_version() -> str | None:
    try:
        import lm_eval
    except ImportError:
        return None
    return getattr(lm_eval, "__version__", "unknown")


def _tasks_dir() -> Path:
    try:
        import lm_eval
    except ImportError as e:
        raise StudyError("the lm-eval peer needs `lm-eval` (PyPI lm-eval==0.4.13, in "
                         "requirements/base.in); run `make setup`") from e
    return Path(lm_eval.__file__).parent / "tasks"


def _row(item: dict, fields: dict[str, str]) -> dict:
    return {fields["question"]: item["question"], "A": item["A"], "B": item["B"], "C": item["C"],
            "D": item["D"], fields["answer"]: item["answer"]}


def write_tasks(folder: str | Path, benchmark: str, items: list[dict], dev: list[dict]) -> dict[str, list[str]]:
    """One lm-eval task per subject of `items` in `folder`: lm-eval's own task file included,
    its data source replaced by `<task>_{test,dev}.jsonl` (the study's items in their order; the
    subject's dev items in file order). Returns task name → the study's sample ids, in doc order."""
    if benchmark not in LMEVAL_TASKS:
        raise StudyError(f"no lm-eval task for {benchmark!r}; peers: {sorted(LMEVAL_TASKS)}")
    spec = LMEVAL_TASKS[benchmark]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tasks_dir = _tasks_dir()
    by_subject: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        by_subject[it["subject"]].append(it)
    dev_by: dict[str, list[dict]] = defaultdict(list)
    for d in dev:
        dev_by[d["subject"]].append(d)
    out = {}
    for subject, its in by_subject.items():
        base = tasks_dir / spec["file"].format(subject=subject)
        if not base.is_file():
            raise StudyError(f"lm-eval has no task file {base} for subject {subject!r}")
        name = f"slm_{benchmark}_{subject}"
        files = {}
        for split, rows in ((spec["test_split"], its), ("dev", dev_by[subject])):
            p = folder / f"{name}_{split}.jsonl"
            p.write_text("".join(json.dumps(_row(r, spec["fields"]), ensure_ascii=False) + "\n"
                                 for r in rows), encoding="utf-8")
            files[split] = str(p)
        cfg = {"include": str(base), "task": name, "dataset_path": "json", "dataset_name": None,
               "dataset_kwargs": {"data_files": files}}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        out[name] = [it["id"] for it in its]
    return out


def write_gsm8k_task(folder: str | Path, items: list[dict], train: list[dict], *,
                     task: str = "gsm8k") -> dict[str, list[str]]:
    """lm-eval's own `gsm8k` (or `gsm8k_cot`: `task`) task over the study's items (in their
    order) with the whole train split (the rows the study draws shots from, in their order) as
    the few-shot pool; both written with the two fields of openai/gsm8k (question, answer).
    gsm8k_cot's exemplars are in its task file, so its train split is not read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if task not in LMEVAL_GENERATIVE:
        raise StudyError(f"no lm-eval peer for task {task!r}; peers: {sorted(LMEVAL_GENERATIVE)}")
    base = _tasks_dir() / LMEVAL_GENERATIVE[task]
    name = f"slm_{task}"
    files = {}
    for split, rows in (("test", items), ("train", train)):
        p = folder / f"{name}_{split}.jsonl"
        p.write_text("".join(json.dumps({"question": r["question"], "answer": r["answer"]},
                                        ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        files[split] = str(p)
    cfg = {"include": str(base), "task": name, "tag": [], "dataset_path": "json",
           "dataset_name": None, "dataset_kwargs": {"data_files": files}}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return {name: [it["id"] for it in items]}


def run(hf_dir: str | Path, folder: str | Path, task_ids: dict[str, list[str]], *,
        num_fewshot: int = 5, dtype: str = "float32", device: str = "cpu",
        max_gen_toks: int | None = None) -> dict[str, dict]:
    """lm-eval's `simple_evaluate` on its HF backend, offline, batch size 1: per study sample id,
    lm-eval's context, continuations, log-likelihoods and chosen letter (or, for generative
    tasks, its generation and each filter's answer). `max_gen_toks` overrides the task file's
    budget (lm-eval's `--gen_kwargs`), so a short smoke budget is the same on both sides."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(folder))
    res = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={hf_dir},dtype={dtype}", tasks=sorted(task_ids),
        num_fewshot=num_fewshot, batch_size=1, device=device, log_samples=True, task_manager=tm,
        random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=1234,
        **({"gen_kwargs": {"max_gen_toks": max_gen_toks}} if max_gen_toks else {}))
    out: dict[str, dict] = {}
    for name, ids in task_ids.items():
        for smp in res["samples"][name]:
            sid = ids[smp["doc_id"]]
            args = [tuple(a) for a in smp["arguments"]]
            entry = out.setdefault(sid, {"context": args[0][0]})
            if len(args) == 1 and isinstance(args[0][1], dict):  # generate_until
                entry["generation"] = smp["resps"][0][0]
                entry.setdefault("filters", {})[smp["filter"]] = {
                    "extracted": smp["filtered_resps"][0], "exact_match": smp.get("exact_match")}
                continue
            lls = [float(r[0]) for r in smp["filtered_resps"]]
            pick = max(range(len(lls)), key=lambda i: lls[i])  # np.argmax: first of equals
            entry.update(continuations=[a[1] for a in args], logprobs=dict(zip("ABCD", lls)),
                         choice="ABCD"[pick], acc=smp.get("acc"))
    return out


def compare(records: list[dict], peer: dict[str, dict]) -> tuple[list[dict], dict]:
    """Item by item: is the study's prompt byte-identical to lm-eval's context, did both choose
    the same answer, and, where not, both sides' log-likelihoods. Returns (rows, totals)."""
    rows = []
    for r in records:
        p = peer.get(r["sample_id"])
        if p is None:
            continue
        ours = (r.get("detail") or {}).get("continuation_logprobs") or {}
        gap = {c: ours.get(c, float("nan")) - p["logprobs"][c] for c in p["logprobs"]}
        rows.append({"sample_id": r["sample_id"], "task": r["task"], "target": r["target"],
                     "prompt_identical": r.get("prompt") == p["context"],
                     "gold": r.get("gold"), "study": r.get("extracted"), "lm_eval": p["choice"],
                     "agree": r.get("extracted") == p["choice"],
                     "max_abs_logprob_gap": max(abs(v) for v in gap.values()) if gap else None})
    n = len(rows)
    totals = {"n": n, "prompts_identical": sum(x["prompt_identical"] for x in rows),
              "answers_agree": sum(x["agree"] for x in rows),
              "agree_rate": sum(x["agree"] for x in rows) / n if n else None,
              "study_accuracy": sum(x["study"] == x["gold"] for x in rows) / n if n else None,
              "lm_eval_accuracy": sum(x["lm_eval"] == x["gold"] for x in rows) / n if n else None,
              "differ": [x["sample_id"] for x in rows if not x["agree"]],
              "lm_eval": lmeval_version()}
    return rows, totals


def compare_generative(records: list[dict], peer: dict[str, dict], stop=()) -> tuple[list[dict], dict]:
    """Generative items: byte-identical prompt, the same generated text (both cut at the stop
    strings), the same strict extraction, the same verdict as lm-eval's exact_match."""
    from .runner import cut_at_stop

    rows = []
    for r in records:
        p = peer.get(r["sample_id"])
        if p is None or "generation" not in p:
            continue
        ours = cut_at_stop(r.get("raw_output") or "", stop)[0]
        theirs = cut_at_stop(p["generation"], stop)[0]
        strict = (p.get("filters") or {}).get("strict-match", {})
        rows.append({"sample_id": r["sample_id"], "task": r["task"], "target": r["target"],
                     "prompt_identical": r.get("prompt") == p["context"],
                     "text_identical": ours.strip() == theirs.strip(),
                     "study": r.get("extracted"), "lm_eval": strict.get("extracted"),
                     "study_correct": r.get("verdict") == "correct",
                     "lm_eval_correct": bool(strict.get("exact_match")),
                     "agree": (r.get("verdict") == "correct") == bool(strict.get("exact_match"))
                     and (r.get("extracted") or "[invalid]") == strict.get("extracted")})
    n = len(rows)
    totals = {"n": n, "prompts_identical": sum(x["prompt_identical"] for x in rows),
              "texts_identical": sum(x["text_identical"] for x in rows),
              "answers_agree": sum(x["agree"] for x in rows),
              "agree_rate": sum(x["agree"] for x in rows) / n if n else None,
              "study_accuracy": sum(x["study_correct"] for x in rows) / n if n else None,
              "lm_eval_accuracy": sum(x["lm_eval_correct"] for x in rows) / n if n else None,
              "differ": [x["sample_id"] for x in rows if not x["agree"]], "lm_eval": lmeval_version()}
    return rows, totals


def section_peer(tasks, records: list[dict], folder: str | Path, hf_dir: str | Path, *,
                 model: str, num_fewshot: int = 5) -> dict:
    """Notebook 03's peer check: lm-eval scores the items of every log-likelihood CMMLU / C-Eval
    task (each with the shots the study used) on the model's HF folder, and each loglik target's
    records of `model` (the model whose HF folder `hf_dir` is) are compared with it. lm-eval's
    per-item results are kept in `folder/peer_lmeval.json` and reused while the items are the
    same (a rerun costs nothing).
    Returns {"lm_eval": version, "by_target": [totals + target], "differ": [rows that differ]}."""
    import hashlib

    folder = Path(folder)
    mc = [t for t in tasks if t.mode == "loglik" and t.name in LMEVAL_TASKS]
    key = hashlib.sha256(json.dumps(
        [[t.name, t.config_id, [s.id for s in t.samples]] for t in mc] + [str(hf_dir), num_fewshot],
        sort_keys=True).encode()).hexdigest()[:16]

    def compute() -> dict:
        work = folder / "peer_lmeval_tasks"
        task_ids: dict[str, list[str]] = {}
        for t in mc:
            items = [s.data["item"] for s in t.samples]
            dev = [d for s in t.samples for d in s.data["shots"]]
            dev = list({d["id"]: d for d in dev}.values())  # one copy per dev item, file order kept
            task_ids.update(write_tasks(work, t.name, items, dev))
        return run(hf_dir, work, task_ids, num_fewshot=num_fewshot)

    peer = _cached(folder, "peer_lmeval.json", key, compute) if mc else {}
    names = {t.name for t in mc}
    records = [r for r in records if r.get("model") == model]
    by_target, differ = [], []
    for target in sorted({r["target"] for r in records if r["mode"] == "loglik" and r["task"] in names}):
        recs = [r for r in records if r["target"] == target and r["mode"] == "loglik" and r["task"] in names]
        rows, totals = compare(recs, peer)
        by_target.append({"target": target, **{k: v for k, v in totals.items() if k != "differ"}})
        differ += [r for r in rows if not r["agree"] or not r["prompt_identical"]]
    return {"lm_eval": lmeval_version(), "by_target": by_target, "differ": differ}


def _cached(folder: Path, name: str, key: str, compute) -> dict:
    """lm-eval's per-item results in `folder/name`, recomputed only when `key` changes."""
    cache = folder / name
    if cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return saved["peer"]
    peer = compute()
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "lm_eval": lmeval_version(), "peer": peer},
                              ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, cache)
    return peer


def section_peer_generative(tasks, records: list[dict], folder: str | Path, hf_dir: str | Path,
                            *, model: str, train: list[dict]) -> dict:
    """Notebook 04's peer check: lm-eval generates (HF backend, greedy, its own task files) on
    the items of each text task it has a file for (`gsm8k`, `gsm8k_cot`), with the shots the
    study used, on the model's HF folder; every target's records of `model` are compared item
    by item (:func:`compare_generative`). A target on another engine (llama.cpp's GGUF against
    lm-eval's transformers) shows engine parity and protocol parity together: the prompts must
    still be byte-identical, the texts need not be. Cached in `folder/peer_lmeval_<task>.json`.
    Returns {"lm_eval": version, "by_target": [totals + task + target], "differ": [rows]}."""
    import hashlib

    folder = Path(folder)
    by_target, differ = [], []
    records = [r for r in records if r.get("model") == model]
    for t in tasks:
        if t.name not in LMEVAL_GENERATIVE or t.prompt_format != "text":
            continue
        shots = int(t.config.get("shots", 0))
        key = hashlib.sha256(json.dumps([t.name, t.config_id, [s.id for s in t.samples],
                                         str(hf_dir), shots, t.max_tokens],
                                        sort_keys=True).encode()).hexdigest()[:16]
        items = [s.data["item"] for s in t.samples]

        def compute(items=items, t=t, shots=shots):
            work = folder / f"peer_lmeval_{t.name}_tasks"
            ids = write_gsm8k_task(work, items, train, task=t.name)
            return run(hf_dir, work, ids, num_fewshot=shots, max_gen_toks=t.max_tokens)

        peer = _cached(folder, f"peer_lmeval_{t.name}.json", key, compute)
        recs = [r for r in records if r["task"] == t.name]
        for target in sorted({r["target"] for r in recs}):
            rows, totals = compare_generative([r for r in recs if r["target"] == target], peer,
                                              stop=t.stop)
            by_target.append({"task": t.name, "target": target,
                              **{k: v for k, v in totals.items() if k != "differ"}})
            differ += [r for r in rows if not r["agree"] or not r["prompt_identical"]]
    return {"lm_eval": lmeval_version(), "by_target": by_target, "differ": differ}


def _bench(argv=None) -> None:
    """One side of the study-vs-lm-eval throughput comparison, as a whole process:
    `python -m slmstudy.evals.peer study|lm-eval --n 20` scores the same `n` CMMLU items (seeded,
    proportional to subjects, 5 dev shots, lm-eval's cmmlu protocol) on the embedded model's HF
    folder: the study with its transformers engine, lm-eval with its HF backend. Time the two
    with any whole-process timer (e.g. `/usr/bin/time -v`), one after the other."""
    import argparse
    import tempfile

    from .. import datasets as D
    from ..forms import HF
    from ..models import EMBEDDED_KEY
    from ..results import SectionResults
    from . import chinese, runner

    ap = argparse.ArgumentParser(prog="python -m slmstudy.evals.peer", description=_bench.__doc__)
    ap.add_argument("side", choices=["study", "lm-eval"])
    ap.add_argument("--n", type=int, default=20, help="CMMLU test items (default 20)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    a = ap.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    items = D.proportional_subset(D.load_cmmlu("test"), a.n, "subject", seed=0)
    task = chinese.mc_task("cmmlu", items, dev=D.load_cmmlu("dev"), shots=5, mode="loglik")
    with tempfile.TemporaryDirectory() as tmp:
        if a.side == "study":
            target = runner.resolve_target(EMBEDDED_KEY, "transformers", threads=a.threads)
            res = SectionResults("bench", "03_chinese_quality", root=Path(tmp))
            recs, _ = runner.run_tasks(target, [task], res, progress=False)
            acc = sum(r["verdict"] == "correct" for r in recs) / len(recs)
        else:
            dev = list({d["id"]: d for s in task.samples for d in s.data["shots"]}.values())
            ids = write_tasks(Path(tmp) / "tasks", "cmmlu", items, dev)
            out = run(HF.embedded(), Path(tmp) / "tasks", ids, num_fewshot=5)
            acc = sum(out[i["id"]]["choice"] == i["answer"] for i in items) / len(items)
    print(f"{a.side}: {len(items)} CMMLU items, accuracy {acc:.3f}")


if __name__ == "__main__":
    _bench()
