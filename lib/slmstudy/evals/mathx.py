"""Math: GSM8K (strict `####` and flexible last number) and MATH-500 (`\\boxed{}` + equivalence).

(Named `mathx` so that nothing in this package can shadow the standard library's `math`.)

GSM8K, two named protocols (:mod:`slmstudy.evals.protocols`):
- `lm-eval/gsm8k` (task `gsm8k`): lm-evaluation-harness's `gsm8k` exactly — plain text
  `Question: …\nAnswer:` after 5 train-split exemplars drawn as lm-eval draws them, generation
  cut at "Question:", strict-match (`#### <number>`) and flexible-extract (last number) scored by
  lm-eval's exact match after its regexes_to_ignore;
- `chat-gen/gsm8k` (task `gsm8k_chat`): the model's chat template, asked to reason and end with
  `#### <number>`; strict and flexible readings compared numerically.

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
                protocol="chat-gen/gsm8k",
                config={"template": GSM8K_TEMPLATE, "shots": len(shot_items),
                        "shot_ids": [s["id"] for s in shot_items]})


# ------------------------------------------------------------------------------ lm-eval's gsm8k

#: lm-eval 0.4.13 tasks/gsm8k/gsm8k.yaml: generation_kwargs.until, filters, exact_match settings
LMEVAL_GSM8K_STOP = ("Question:", "</s>", "<|im_end|>")
LMEVAL_GSM8K_MAX_TOKENS = 256  # lm-eval's default max_gen_toks
LMEVAL_GSM8K_SEED = 1234  # lm-eval's default fewshot_random_seed
_LMEVAL_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_LMEVAL_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_LMEVAL_IGNORE = (",", "\\$", "(?s).*#### ", "\\.$")


def lmeval_exact_match_form(text: str) -> str:
    """exact_match's view of a string in lm-eval's gsm8k: `regexes_to_ignore` removed in order
    (",", "$", everything up to "#### ", a final "."), then lower-cased (`ignore_case`)."""
    for pattern in _LMEVAL_IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def lmeval_gsm8k_extract(text: str) -> tuple[str | None, str | None]:
    """(strict-match, flexible-extract) as lm-eval's two filters: the first `#### <number>`;
    the last number-like run (group_select -1, take_first). None where the filter finds none
    (lm-eval's "[invalid]")."""
    strict = _LMEVAL_STRICT.search(text)
    matches = _LMEVAL_FLEXIBLE.findall(text)
    flexible = None
    if matches:
        last = matches[-1]
        flexible = next((g for g in last if g), None) if isinstance(last, tuple) else last
    return (strict.group(1) if strict else None), flexible


def score_gsm8k_lmeval(text: str, sample: Sample) -> Score:
    """lm-eval's gsm8k verdict: exact match (after its regexes_to_ignore) of the strict-match
    number with the reference answer field; flexible-extract as a second named verdict."""
    strict, flexible = lmeval_gsm8k_extract(text)
    gold = lmeval_exact_match_form(sample.data["answer"])

    def verdict(x):
        if x is None:
            return "format_failure"
        return "correct" if lmeval_exact_match_form(x) == gold else "wrong"

    return Score(verdict(strict), strict, {"flexible_extracted": flexible},
                 verdicts={"flexible": verdict(flexible)})


def lmeval_gsm8k_shots(train: list[dict], n_items: int, k: int = 5,
                       seed: int = LMEVAL_GSM8K_SEED) -> list[list[dict]]:
    """The shots lm-eval draws for the i-th document it evaluates: one `random.Random(seed)`
    per task (`set_fewshot_seed`), and for each document in evaluation order `rnd.sample(train, k)`
    (ContextSampler.sample; the train split is not the test split, so no document is removed)."""
    import random

    rnd = random.Random(seed)
    return [rnd.sample(train, k) for _ in range(n_items)]


def lmeval_gsm8k_prompt(item: dict, shots: list[dict]) -> str:
    """`Question: {question}\nAnswer:` after each shot rendered with its answer and the
    target (" ") and few-shot ("\n\n") delimiters."""
    return "".join(f"Question: {s['question']}\nAnswer: {s['answer']}\n\n" for s in shots) + \
        f"Question: {item['question']}\nAnswer:"


def gsm8k_lmeval_task(items: list[dict], train: list[dict], *, shots: int = 5,
                      max_tokens: int = LMEVAL_GSM8K_MAX_TOKENS, name: str = "gsm8k") -> Task:
    """GSM8K under lm-eval's `gsm8k` protocol (plain text, `shots` train-split exemplars drawn
    as lm-eval draws them for documents evaluated in this order, stop at "Question:", strict
    and flexible exact match). Scored with `raw_output` cut at the first stop string."""
    samples = []
    for it, ex in zip(items, lmeval_gsm8k_shots(train, len(items), shots)):
        samples.append(Sample(id=it["id"], messages=[{"role": "user", "content": it["question"]}],
                              gold=it["target"], data={"answer": it["answer"], "item": it},
                              meta={"shot_ids": [e["id"] for e in ex]},
                              prompt=lmeval_gsm8k_prompt(it, ex)))
    return Task(name=name, samples=samples, scorer=score_gsm8k_lmeval, max_tokens=max_tokens,
                prompt_format="text", stop=LMEVAL_GSM8K_STOP, protocol="lm-eval/gsm8k",
                config={"shots": shots, "fewshot_seed": LMEVAL_GSM8K_SEED})


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
                protocol="study/math500", config={"template": MATH_TEMPLATE, "shots": 0})


def build_tasks(P) -> list[Task]:
    """The tasks of notebook 04 (MathParams): GSM8K (a seeded subset) under lm-eval's `gsm8k`
    protocol (`gsm8k_shots` train-split exemplars) and, with `gsm8k_chat`, the 0-shot chat
    variant `gsm8k_chat`; MATH-500 stratified by level."""
    from .. import datasets as D

    tasks: list[Task] = []
    if P.gsm8k_n:
        items = D.seeded_subset(D.load_gsm8k(P.data_dir), P.gsm8k_n, P.seed)
        tasks.append(gsm8k_lmeval_task(items, D.load_gsm8k(P.data_dir, split="train"),
                                       shots=P.gsm8k_shots, max_tokens=P.gsm8k_max_tokens))
        if P.gsm8k_chat:
            tasks.append(gsm8k_task(items, max_tokens=P.gsm8k_max_tokens, name="gsm8k_chat"))
    if P.math500_n:
        items = D.proportional_subset(D.load_math500(P.data_dir), P.math500_n, "level", P.seed)
        tasks.append(math500_task(items, max_tokens=P.math500_max_tokens))
    return tasks
