"""Chinese quality: CMMLU and C-Eval multiple choice, and the project's own rubric tasks.

Multiple choice is scored two ways:
- generative: the model answers freely after a `答案：` prompt; the letter is extracted with
  :func:`~slmstudy.evals.extract.extract_choice` (no letter found = format failure);
- log-likelihood: the next-token log-probabilities of A/B/C/D after the assistant turn starts with
  `答案：` (always an answer; shows what the model "knows" even when it cannot follow the format).

Prompts follow the CMMLU/C-Eval papers: `以下是关于{科目}的单项选择题，请直接给出正确答案的选项。`,
the question, options `A. …`, then `答案：`; k-shot examples (from the dev split of the same
subject) are earlier chat turns whose assistant reply is `答案：X`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import yaml

from ..errors import StudyError
from ..paths import PROJECT_DATA_DIR
from . import rubric
from .extract import extract_choice
from .runner import Sample, Score, Task

MC_TEMPLATE = "mc-zh-v1"
ZH_TASKS_FILE = PROJECT_DATA_DIR / "zh_tasks.yaml"


# ------------------------------------------------------------------------------ multiple choice


def mc_header(subject_zh: str | None) -> str:
    about = f"关于{subject_zh}的" if subject_zh else ""
    return f"以下是{about}单项选择题，请直接给出正确答案的选项。"


def mc_question(item: dict, choices: str = "ABCD") -> str:
    opts = "\n".join(f"{c}. {item[c]}" for c in choices)
    return f"{item['question'].strip()}\n{opts}\n答案："


def mc_messages(item: dict, shots: list[dict] = (), subject_zh: str | None = None) -> list[dict]:
    """Chat turns: header + question (after k example turns answered `答案：X`)."""
    header = mc_header(subject_zh)
    messages: list[dict] = []
    for i, shot in enumerate(shots):
        lead = f"{header}\n\n" if i == 0 else ""
        messages.append({"role": "user", "content": lead + mc_question(shot)})
        messages.append({"role": "assistant", "content": f"答案：{shot['answer']}"})
    lead = "" if shots else f"{header}\n\n"
    messages.append({"role": "user", "content": lead + mc_question(item)})
    return messages


def score_choice(text: str, sample: Sample) -> Score:
    """Generative multiple choice: extracted letter vs gold; none found = format failure."""
    letter = extract_choice(text)
    if letter is None:
        return Score("format_failure", None)
    return Score("correct" if letter == sample.gold else "wrong", letter)


def mc_task(name: str, items: list[dict], *, dev: list[dict] = (), shots: int = 0,
            mode: str = "generate", max_tokens: int = 24, subject_field: str | None = None) -> Task:
    """A CMMLU / C-Eval task. `dev`: items to draw the `shots` examples from (same subject,
    in dev order). `subject_field`: item field with the Chinese subject name (C-Eval)."""
    by_subject: dict[str, list[dict]] = defaultdict(list)
    for d in dev:
        by_subject[d["subject"]].append(d)
    samples = []
    for it in items:
        examples = by_subject.get(it["subject"], [])[:shots]
        if len(examples) < shots:
            raise StudyError(f"{name}: {shots}-shot needs {shots} dev items of subject "
                             f"{it['subject']!r}, found {len(examples)}")
        subj = it.get(subject_field) if subject_field else None
        meta = {"subject": it["subject"]}
        if it.get("category"):
            meta["category"] = it["category"]
        samples.append(Sample(id=it["id"], messages=mc_messages(it, examples, subj),
                              gold=it["answer"], meta=meta))
    return Task(name=name, samples=samples, scorer=score_choice, max_tokens=max_tokens,
                mode=mode, config={"template": MC_TEMPLATE, "shots": shots})


def _multiple_choice(records: list[dict]) -> list[dict]:
    return [r for r in records if isinstance(r.get("gold"), str) and len(r["gold"]) == 1
            and r["gold"] in "ABCDEFGH"]


def mode_agreement(records: list[dict]) -> list[dict]:
    """How often two ways of answering (target × mode) pick the same letter on the same item,
    and the accuracy of each on the items both answered. A format failure never agrees."""
    answers: dict[tuple[str, str], dict[str, str | None]] = defaultdict(dict)
    gold: dict[tuple[str, str], str] = {}
    for r in _multiple_choice(records):
        col = f"{r['target']} [{r['mode']}]"
        answers[(r["task"], col)][r["sample_id"]] = r.get("extracted")
        gold[(r["task"], r["sample_id"])] = r.get("gold")
    rows = []
    tasks = sorted({t for t, _ in answers})
    for task in tasks:
        cols = sorted(c for t, c in answers if t == task)
        for i, a in enumerate(cols):
            for b in cols[i + 1:]:
                ids = sorted(set(answers[(task, a)]) & set(answers[(task, b)]))
                if not ids:
                    continue
                pa = [answers[(task, a)][s] for s in ids]
                pb = [answers[(task, b)][s] for s in ids]
                agree = sum(x is not None and x == y for x, y in zip(pa, pb))
                g = [gold[(task, s)] for s in ids]
                rows.append({"task": task, "a": a, "b": b, "n": len(ids), "agree": agree,
                             "agree_rate": agree / len(ids),
                             "a_accuracy": sum(x == y for x, y in zip(pa, g)) / len(ids),
                             "b_accuracy": sum(x == y for x, y in zip(pb, g)) / len(ids)})
    return rows


def letter_distribution(records: list[dict]) -> list[dict]:
    """Share of each answer letter per target × mode (a model stuck on one letter scores
    near the share of that letter among the gold answers)."""
    counts: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    for r in _multiple_choice(records):
        counts[(r["task"], r["target"], r["mode"])][r.get("extracted") or "none"] += 1
    rows = []
    for (task, target, mode), c in sorted(counts.items()):
        n = sum(c.values())
        rows.append({"task": task, "target": target, "mode": mode, "n": n,
                     **{k: c.get(k, 0) / n for k in ("A", "B", "C", "D", "none")}})
    return rows


# ------------------------------------------------------------------------------ own tasks


def load_zh_tasks(path: str | Path | None = None) -> dict:
    """data/zh_tasks.yaml, validated: {"version", "tasks": [...], "sha256"}. The file's
    `common_checks` are appended to every task's checks."""
    p = Path(path) if path else ZH_TASKS_FILE
    if not p.is_file():
        raise StudyError(f"Chinese task file {p} not found (it ships with the repository in "
                         "data/zh_tasks.yaml)")
    raw_bytes = p.read_bytes()
    doc = yaml.safe_load(raw_bytes.decode("utf-8")) or {}
    tasks = doc.get("tasks") or []
    common = doc.get("common_checks") or []
    for c in common:
        rubric.validate_check(c, f"{p}: common_checks")
    seen = set()
    for t in tasks:
        where = f"{p}: task {t.get('id')!r}"
        for k in ("id", "category", "prompt", "checks"):
            if k not in t:
                raise StudyError(f"{where} lacks {k!r}")
        if t["id"] in seen:
            raise StudyError(f"{where}: duplicate id")
        seen.add(t["id"])
        if not t["checks"]:
            raise StudyError(f"{where}: no checks")
        for c in t["checks"]:
            rubric.validate_check(c, where)
        t["checks"] = list(t["checks"]) + [dict(c) for c in common]
    return {"version": doc.get("version"), "tasks": tasks,
            "sha256": hashlib.sha256(raw_bytes).hexdigest()}


def score_rubric(text: str, sample: Sample) -> Score:
    verdict, share, checks = rubric.evaluate(text, sample.data["checks"],
                                             prompt=sample.messages[-1]["content"])
    return Score(verdict, None, {"checks": checks}, value=share)


def zh_rubric_task(doc: dict, *, max_tokens: int = 192, categories: list[str] | None = None,
                   name: str = "zh_tasks") -> Task:
    """The own task set as a Task (one sample per task; no system prompt beyond the model's)."""
    tasks = [t for t in doc["tasks"] if not categories or t["category"] in categories]
    samples = [Sample(id=t["id"], messages=[{"role": "user", "content": t["prompt"]}],
                      gold=None, meta={"category": t["category"], "source": t.get("source")},
                      data={"checks": t["checks"]}) for t in tasks]
    blob = json.dumps([(t["id"], t["prompt"], t["checks"]) for t in tasks], ensure_ascii=False,
                      sort_keys=True)
    checks_hash = hashlib.sha256(blob.encode()).hexdigest()
    return Task(name=name, samples=samples, scorer=score_rubric, max_tokens=max_tokens,
                config={"template": "zh-rubric-v1", "tasks_sha256": checks_hash[:16]})


def rubric_breakdown(records: list[dict]) -> list[dict]:
    """Pass rate of the rubric checks per target × check kind (fact, forbidden, format,
    language), pooled over tasks."""
    acc: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        for c in (r.get("detail") or {}).get("checks", []):
            a = acc[(r["target"], c["kind"])]
            a[0] += bool(c["passed"])
            a[1] += 1
    return [{"target": t, "kind": k, "passed": p, "checks": n, "pass_rate": p / n}
            for (t, k), (p, n) in sorted(acc.items())]


# ------------------------------------------------------------------------------ the section


def build_tasks(P) -> list[Task]:
    """The tasks of notebook 03 from its validated parameters (ChineseQualityParams): CMMLU and
    C-Eval subsets stratified by subject (generative and log-likelihood variants of each), and
    the own rubric tasks."""
    from .. import datasets as D

    tasks: list[Task] = []
    for name, n, load, dev_split, subject_field in (
            ("cmmlu", P.cmmlu_n, lambda: D.load_cmmlu("test", P.data_dir), "dev", None),
            ("ceval", P.ceval_n, lambda: D.load_ceval("val", P.data_dir), "dev", "subject_zh")):
        if not n:
            continue
        items = D.stratified_subset(load(), n, "subject", P.seed)
        dev = []
        if P.shots:
            dev = (D.load_cmmlu(dev_split, P.data_dir) if name == "cmmlu"
                   else D.load_ceval(dev_split, P.data_dir))
        tasks.append(mc_task(name, items, dev=dev, shots=P.shots, mode="generate",
                             max_tokens=P.mc_max_tokens, subject_field=subject_field))
        tasks.append(mc_task(name, items, dev=dev, shots=P.shots, mode="loglik", max_tokens=1,
                             subject_field=subject_field))
    if P.zh_tasks:
        tasks.append(zh_rubric_task(load_zh_tasks(), max_tokens=P.zh_max_tokens,
                                    categories=P.zh_categories))
    return tasks
