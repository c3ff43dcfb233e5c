"""Math: GSM8K (strict `####` and flexible last number) and MATH-500 (`\\boxed{}` + equivalence).

(Named `mathx` so that nothing in this package can shadow the standard library's `math`.)

GSM8K: the model is asked to reason and end with `#### <number>`. The primary verdict is
*strict* (the number after `####`; none = format failure); the *flexible* verdict takes the last
number in the output, as lm-evaluation-harness does. Few-shot examples are GSM8K test items
shown as earlier chat turns (calculator annotations `<<…>>` removed) and are excluded from the
scored subset; their ids are part of the task config.

MATH-500: the model is asked to put its final answer in `\\boxed{}`; the last box is compared with
the gold answer by :func:`~slmstudy.evals.extract.math_equal` (normalisation, then math-verify,
then a safe sympy comparison). No box = format failure.
"""

from __future__ import annotations

import re

from .extract import gsm8k_flexible, gsm8k_strict, last_boxed, math_equal, numbers_equal
from .runner import Sample, Score, Task

GSM8K_TEMPLATE = "gsm8k-en-v1"
MATH_TEMPLATE = "math500-en-v1"

GSM8K_INSTRUCTION = ("Solve the following math problem step by step. At the end, write the "
                     "final answer on its own line in the form \"#### <number>\".")
MATH_INSTRUCTION = ("Solve the following math problem step by step. Put your final answer "
                    "within \\boxed{}.")

_CALC = re.compile(r"<<[^>]*>>")


def gsm8k_solution_text(answer: str) -> str:
    """A GSM8K reference solution as a model should write it (calculator annotations removed)."""
    return _CALC.sub("", answer).strip()


def gsm8k_messages(item: dict, shots: list[dict] = ()) -> list[dict]:
    messages: list[dict] = []
    for shot in shots:
        messages.append({"role": "user",
                         "content": f"{GSM8K_INSTRUCTION}\n\nQuestion: {shot['question']}"})
        messages.append({"role": "assistant", "content": gsm8k_solution_text(shot["answer"])})
    messages.append({"role": "user",
                     "content": f"{GSM8K_INSTRUCTION}\n\nQuestion: {item['question']}"})
    return messages


def _num_verdict(pred: str | None, gold: str) -> str:
    if pred is None:
        return "format_failure"
    return "correct" if numbers_equal(pred, gold) else "wrong"


def score_gsm8k(text: str, sample: Sample) -> Score:
    """Primary: strict `####`; also `flexible` (last number)."""
    strict = gsm8k_strict(text)
    flexible = gsm8k_flexible(text)
    return Score(_num_verdict(strict, sample.gold), strict,
                 {"flexible_extracted": flexible},
                 verdicts={"flexible": _num_verdict(flexible, sample.gold)})


def split_gsm8k_shots(items: list[dict], shots: int) -> tuple[list[dict], list[dict]]:
    """(shot examples, the rest): the first `shots` items of the dataset's own order serve as
    examples and are never scored."""
    return list(items[:shots]), list(items[shots:])


def gsm8k_task(items: list[dict], *, shot_items: list[dict] = (), max_tokens: int = 256,
               name: str = "gsm8k") -> Task:
    shot_ids = {s["id"] for s in shot_items}
    overlap = [it["id"] for it in items if it["id"] in shot_ids]
    if overlap:
        raise ValueError(f"GSM8K items {overlap[:3]} are both few-shot examples and scored")
    samples = [Sample(id=it["id"], messages=gsm8k_messages(it, shot_items), gold=it["target"])
               for it in items]
    return Task(name=name, samples=samples, scorer=score_gsm8k, max_tokens=max_tokens,
                config={"template": GSM8K_TEMPLATE, "shots": len(shot_items),
                        "shot_ids": [s["id"] for s in shot_items]})


def math_messages(item: dict) -> list[dict]:
    return [{"role": "user", "content": f"{MATH_INSTRUCTION}\n\n{item['problem']}"}]


def score_math(text: str, sample: Sample) -> Score:
    boxed = last_boxed(text)
    if boxed is None:
        return Score("format_failure", None)
    return Score("correct" if math_equal(boxed, sample.gold) else "wrong", boxed)


def math500_task(items: list[dict], *, max_tokens: int = 384, name: str = "math500") -> Task:
    samples = [Sample(id=it["id"], messages=math_messages(it), gold=it["answer"],
                      meta={"level": it["level"], "subject": it["subject"]}) for it in items]
    return Task(name=name, samples=samples, scorer=score_math, max_tokens=max_tokens,
                config={"template": MATH_TEMPLATE, "shots": 0})


def build_tasks(P) -> list[Task]:
    """The tasks of notebook 04 (MathParams): GSM8K (seeded subset; the first `gsm8k_shots`
    items are examples, never scored) and MATH-500 stratified by level."""
    from .. import datasets as D

    tasks: list[Task] = []
    if P.gsm8k_n:
        shots, pool = split_gsm8k_shots(D.load_gsm8k(P.data_dir), P.gsm8k_shots)
        items = D.seeded_subset(pool, P.gsm8k_n, P.seed)
        tasks.append(gsm8k_task(items, shot_items=shots, max_tokens=P.gsm8k_max_tokens))
    if P.math500_n:
        items = D.stratified_subset(D.load_math500(P.data_dir), P.math500_n, "level", P.seed)
        tasks.append(math500_task(items, max_tokens=P.math500_max_tokens))
    return tasks
