"""Chinese quality: CMMLU and C-Eval multiple choice, and the project's own rubric tasks.

Multiple choice is scored under two named protocols each (:mod:`slmstudy.evals.protocols`):
- `lm-eval/cmmlu`, `lm-eval/ceval-valid` (log-likelihood): exactly lm-evaluation-harness's task
  configs at 5 shots — plain text, no chat template, the subject's description, 5 dev-split
  shots of the same subject (first in file order), the question ending `答案：`, and the answer
  the highest-likelihood continuation of " A" … " D";
- `chat-gen/…` (generative): the same description and questions in the model's chat template
  (shots as earlier turns answered by their letter); the letter is extracted with
  :func:`~slmstudy.evals.extract.extract_choice` (no letter found = format failure).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import yaml

from .. import metrics
from ..errors import StudyError
from ..paths import PROJECT_DATA_DIR
from . import rubric
from .extract import extract_choice
from .runner import Sample, Score, Task

MC_TEMPLATE = "mc-zh-v2"
ZH_TASKS_FILE = PROJECT_DATA_DIR / "zh_tasks.yaml"
CMMLU_SUBJECTS_FILE = PROJECT_DATA_DIR / "cmmlu_subjects.json"
MC_PROTOCOLS = {("cmmlu", "loglik"): "lm-eval/cmmlu", ("cmmlu", "generate"): "chat-gen/cmmlu",
                ("ceval", "loglik"): "lm-eval/ceval-valid", ("ceval", "generate"): "chat-gen/ceval-valid"}


# ------------------------------------------------------------------------------ multiple choice


def cmmlu_subjects_zh() -> dict[str, str]:
    """CMMLU subject (CSV stem) → its Chinese name, as lm-eval's task descriptions write it."""
    return json.loads(CMMLU_SUBJECTS_FILE.read_text(encoding="utf-8"))["subjects"]


def mc_description(benchmark: str, subject_zh: str) -> str:
    """lm-eval's per-subject `description` (tasks/cmmlu/cmmlu_<s>.yaml, tasks/ceval/ceval-valid_<s>.yaml)."""
    if benchmark == "cmmlu":
        return f"以下是关于{subject_zh}的单项选择题，请直接给出正确答案的选项。\n\n"
    if benchmark == "ceval":
        return f"以下是中国关于{subject_zh}的单项选择题，请选出其中的正确答案。\n\n"
    raise StudyError(f"no multiple-choice description for benchmark {benchmark!r}")


def mc_question(item: dict, choices: str = "ABCD") -> str:
    """lm-eval's `doc_to_text`: `{{question.strip()}}\nA. {{A}}\n…\n答案：`."""
    opts = "\n".join(f"{c}. {item[c]}" for c in choices)
    return f"{item['question'].strip()}\n{opts}\n答案："


def mc_prompt(benchmark: str, item: dict, shots: list[dict], subject_zh: str) -> str:
    """The plain-text prompt of lm-eval's multiple_choice with k shots (first_n): description,
    then each shot with its answer after the target delimiter " " and the few-shot delimiter
    "\n\n", then the question."""
    parts = [mc_description(benchmark, subject_zh)]
    parts += [f"{mc_question(s)} {s['answer']}\n\n" for s in shots]
    parts.append(mc_question(item))
    return "".join(parts)


def mc_messages(benchmark: str, item: dict, shots: list[dict], subject_zh: str) -> list[dict]:
    """Chat turns for the generative variant: each shot a user turn (description + question)
    answered by its letter, then the question."""
    header = mc_description(benchmark, subject_zh)
    messages: list[dict] = []
    for shot in shots:
        messages.append({"role": "user", "content": header + mc_question(shot)})
        messages.append({"role": "assistant", "content": shot["answer"]})
    messages.append({"role": "user", "content": header + mc_question(item)})
    return messages


def score_choice(text: str, sample: Sample) -> Score:
    """Generative multiple choice: extracted letter vs gold; none found = format failure."""
    letter = extract_choice(text)
    if letter is None:
        return Score("format_failure", None)
    return Score("correct" if letter == sample.gold else "wrong", letter)


def mc_task(name: str, items: list[dict], *, dev: list[dict] = (), shots: int = 0,
            mode: str = "generate", max_tokens: int = 24,
            subject_zh: dict[str, str] | None = None) -> Task:
    """A CMMLU / C-Eval task under its named protocol (:data:`MC_PROTOCOLS`): `mode="loglik"` is
    lm-eval's `cmmlu` / `ceval-valid` (plain text, log-likelihood of " A" … " D"), `"generate"`
    its chat-template variant. `dev`: the items shots come from (the first `shots` of the same
    subject, in file order, as lm-eval's first_n sampler). `subject_zh`: subject → Chinese name
    (default: C-Eval items carry `subject_zh`; CMMLU's come from data/cmmlu_subjects.json)."""
    benchmark = name.split("_")[0]
    protocol = MC_PROTOCOLS[(benchmark, mode)]
    names = subject_zh or {}
    if benchmark == "cmmlu" and not names:
        names = cmmlu_subjects_zh()
    by_subject: dict[str, list[dict]] = defaultdict(list)
    for d in dev:
        by_subject[d["subject"]].append(d)
    samples = []
    for it in items:
        examples = by_subject.get(it["subject"], [])[:shots]
        if len(examples) < shots:
            raise StudyError(f"{name}: {shots}-shot needs {shots} dev items of subject "
                             f"{it['subject']!r}, found {len(examples)}")
        zh = it.get("subject_zh") or names.get(it["subject"])
        if not zh:
            raise StudyError(f"{name}: no Chinese name for subject {it['subject']!r} (lm-eval's "
                             f"description needs it); add it to {CMMLU_SUBJECTS_FILE}")
        meta = {"subject": it["subject"]}
        if it.get("category"):
            meta["category"] = it["category"]
        samples.append(Sample(id=it["id"], messages=mc_messages(benchmark, it, examples, zh),
                              gold=it["answer"], meta=meta, data={"item": it, "shots": examples},
                              prompt=mc_prompt(benchmark, it, examples, zh) if mode == "loglik" else None))
    if mode == "loglik":
        return Task(name=name, samples=samples, max_tokens=1, mode="loglik", prompt_format="text",
                    continuations=(" A", " B", " C", " D"), protocol=protocol,
                    config={"template": MC_TEMPLATE, "shots": shots})
    return Task(name=name, samples=samples, scorer=score_choice, max_tokens=max_tokens,
                mode="generate", protocol=protocol, config={"template": MC_TEMPLATE, "shots": shots})


def _multiple_choice(records: list[dict]) -> list[dict]:
    return [r for r in records if isinstance(r.get("gold"), str) and len(r["gold"]) == 1
            and r["gold"] in "ABCDEFGH"]


def mode_agreement(records: list[dict]) -> list[dict]:
    """The paired agreement matrix: for every two ways of answering (target × mode, so engines
    and protocols alike) on the same items, how often they pick the same letter, the accuracy of
    each, and whether their accuracies differ — McNemar's exact test on the items only one of
    them got right, and the paired difference with its 95% interval. A format failure never
    agrees."""
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
                ra = [x == y for x, y in zip(pa, g)]
                rb = [x == y for x, y in zip(pb, g)]
                only_a = sum(x and not y for x, y in zip(ra, rb))
                only_b = sum(y and not x for x, y in zip(ra, rb))
                diff, lo, hi = metrics.paired_difference_ci(only_a, only_b, len(ids))
                rows.append({"task": task, "a": a, "b": b, "n": len(ids), "agree": agree,
                             "agree_rate": agree / len(ids),
                             "a_accuracy": sum(ra) / len(ids), "b_accuracy": sum(rb) / len(ids),
                             "only_a_correct": only_a, "only_b_correct": only_b,
                             "mcnemar_p": metrics.mcnemar_exact(only_a, only_b),
                             "accuracy_diff": diff, "diff_ci_low": lo, "diff_ci_high": hi})
    return rows


def subject_means(records: list[dict]) -> list[dict]:
    """Accuracy averaged over subjects (each subject's accuracy, then their mean), beside the
    mean over items, per task × target × mode: lm-eval's group score for cmmlu / ceval-valid
    is the item-weighted mean; the papers' tables are per-subject means."""
    groups: dict[tuple, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in _multiple_choice(records):
        subject = (r.get("meta") or {}).get("subject")
        if subject:
            groups[(r["task"], r["target"], r["mode"])][subject].append(r.get("verdict") == "correct")
    rows = []
    for (task, target, mode), by_subject in sorted(groups.items()):
        per = [sum(v) / len(v) for v in by_subject.values()]
        n = sum(len(v) for v in by_subject.values())
        rows.append({"task": task, "target": target, "mode": mode, "n": n,
                     "n_subjects": len(by_subject),
                     "accuracy_items": sum(sum(v) for v in by_subject.values()) / n,
                     "accuracy_subjects": sum(per) / len(per)})
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
    C-Eval subsets proportional to the subjects (generative and log-likelihood protocols), and
    the own rubric tasks."""
    from .. import datasets as D

    tasks: list[Task] = []
    for name, n, load, load_dev in (
            ("cmmlu", P.cmmlu_n, lambda: D.load_cmmlu("test", P.data_dir),
             lambda: D.load_cmmlu("dev", P.data_dir)),
            ("ceval", P.ceval_n, lambda: D.load_ceval("val", P.data_dir),
             lambda: D.load_ceval("dev", P.data_dir))):
        if not n:
            continue
        items = D.proportional_subset(load(), n, "subject", P.seed)
        dev = load_dev() if P.shots else []
        tasks.append(mc_task(name, items, dev=dev, shots=P.shots, mode="generate",
                             max_tokens=P.mc_max_tokens))
        tasks.append(mc_task(name, items, dev=dev, shots=P.shots, mode="loglik"))
    if P.zh_tasks:
        tasks.append(zh_rubric_task(load_zh_tasks(), max_tokens=P.zh_max_tokens,
                                    categories=P.zh_categories))
    return tasks


def section_summary(records: list[dict], P, target_infos: list[dict], data_used: dict,
                    peer: dict | None = None):
    """The summary.json of notebook 03 (schemas.ChineseSummary): rows, the paired agreement
    matrix, per-subject means, letter shares, the rubric breakdown, the protocols used."""
    from ..schemas import ChineseSummary
    from . import protocols
    from .runner import section_summary as quality_summary
    from .runner import summarize

    zh = [r for r in records if r["task"] == "zh_tasks"]
    used = sorted({(r.get("config") or {}).get("protocol") for r in records} - {None})
    return quality_summary(records, P.model_dump(), schema=ChineseSummary, extra={
        "targets": target_infos, "mode_agreement": mode_agreement(records),
        "subject_means": subject_means(records), "protocols": protocols.table(used),
        "letter_distribution": letter_distribution(records),
        "rubric_breakdown": rubric_breakdown(zh),
        "by_category": summarize(zh, by=("target", "meta.category")),
        "data": data_used, "zh_tasks_sha256": load_zh_tasks()["sha256"], "peer_lmeval": peer})
