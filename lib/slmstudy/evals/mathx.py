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

from .extract import gsm8k_flexible, gsm8k_strict, last_boxed, math_equal, numbers_equal, qwen_math_answer
from .runner import Sample, Score, Task

GSM8K_TEMPLATE = "gsm8k-en-v1"
MATH_TEMPLATE = "qwen25-math-cot"

GSM8K_INSTRUCTION = ("Solve the following math problem step by step. At the end, write the "
                     "final answer on its own line in the form \"#### <number>\".")

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


def _lmeval_exact_match_score(strict: str | None, flexible: str | None, sample: Sample) -> Score:
    """Both filters' answers judged by lm-eval's exact match (after its regexes_to_ignore)
    against the reference answer field; strict is the verdict, flexible a second named one."""
    gold = lmeval_exact_match_form(sample.data["answer"])

    def verdict(x):
        if x is None:
            return "format_failure"
        return "correct" if lmeval_exact_match_form(x) == gold else "wrong"

    return Score(verdict(strict), strict, {"flexible_extracted": flexible},
                 verdicts={"flexible": verdict(flexible)})


def score_gsm8k_lmeval(text: str, sample: Sample) -> Score:
    """lm-eval's gsm8k verdict: exact match of the strict-match number (`#### N`);
    flexible-extract as a second named verdict."""
    return _lmeval_exact_match_score(*lmeval_gsm8k_extract(text), sample)


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



# -------------------------------------------------------------------------- lm-eval's gsm8k_cot

#: lm-eval 0.4.13 tasks/gsm8k/gsm8k-cot.yaml (metadata version 3.0): the 8 chain-of-thought
#: exemplars of Wei et al. (2022), fixed (fewshot_config.samples, sampler first_n), in file order
LMEVAL_GSM8K_COT_EXEMPLARS: tuple[tuple[str, str], ...] = (
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After "
     "they are done, there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So "
     "there must have been 21 - 15 = 6. The answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the "
     "parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have "
     "left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. "
     "After eating 35, they had 74 - 35 = 39. The answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many "
     "lollipops did Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave "
     "Denny 20 - 12 = 8. The answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many "
     "toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more "
     "toys. 5 + 4 = 9. The answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, "
     "from monday to thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * "
     "4 = 20 computers were added. 9 + 20 is 29. The answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. "
     "How many golf balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After "
     "losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has "
     "23 - 15 dollars left. 23 - 15 is 8. The answer is 8."),
)
#: gsm8k-cot.yaml generation_kwargs.until: "Q:" (the next exemplar's opening), "</s>", "<|im_end|>"
LMEVAL_GSM8K_COT_STOP = ("Q:", "</s>", "<|im_end|>")
#: strict-match: `The answer is (\-?[0-9\.\,]+).` — lm-eval's pattern as written, the final "."
#: included (it matches any character but a newline, so an answer that ends the text unpunctuated
#: is not matched, as in lm-eval)
_LMEVAL_COT_STRICT = re.compile(r"The answer is (\-?[0-9\.\,]+).")


def lmeval_gsm8k_cot_prompt(item: dict, k: int = 8) -> str:
    """gsm8k-cot.yaml's doc_to_text `Q: {question}\nA:` (the YAML's folded blank line is one
    newline), each of the first `k` exemplars followed by the target delimiter " " and its
    chain of thought, exemplars joined by the few-shot delimiter "\n\n"."""
    shots = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in LMEVAL_GSM8K_COT_EXEMPLARS[:k])
    return shots + f"Q: {item['question']}\nA:"


def lmeval_gsm8k_cot_extract(text: str) -> tuple[str | None, str | None]:
    """(strict-match, flexible-extract) as gsm8k-cot.yaml's filters: the first
    `The answer is <number>` followed by one more character; the last number-like run."""
    strict = _LMEVAL_COT_STRICT.search(text)
    return (strict.group(1) if strict else None), lmeval_gsm8k_extract(text)[1]


def score_gsm8k_cot_lmeval(text: str, sample: Sample) -> Score:
    """lm-eval's gsm8k_cot verdict: exact match after the same regexes_to_ignore as gsm8k
    (",", "$", up to "#### ", a final ".", case-insensitive) of the strict number with the
    reference's final answer; flexible-extract as a second named verdict."""
    return _lmeval_exact_match_score(*lmeval_gsm8k_cot_extract(text), sample)


def gsm8k_cot_lmeval_task(items: list[dict], *, shots: int = 8,
                          max_tokens: int = LMEVAL_GSM8K_MAX_TOKENS,
                          name: str = "gsm8k_cot") -> Task:
    """GSM8K under lm-eval's `gsm8k_cot` protocol: plain text, the 8 fixed chain-of-thought
    exemplars (`shots` < 8 keeps the first ones, as lm-eval's first_n sampler with
    --num_fewshot does), generation cut at "Q:", strict `The answer is N` and flexible exact
    match."""
    if not 0 <= shots <= len(LMEVAL_GSM8K_COT_EXEMPLARS):
        raise ValueError(f"gsm8k_cot has {len(LMEVAL_GSM8K_COT_EXEMPLARS)} exemplars; "
                         f"shots={shots} is out of range (use 0-8)")
    samples = [Sample(id=it["id"], messages=[{"role": "user", "content": it["question"]}],
                      gold=it["target"], data={"answer": it["answer"], "item": it},
                      prompt=lmeval_gsm8k_cot_prompt(it, shots)) for it in items]
    return Task(name=name, samples=samples, scorer=score_gsm8k_cot_lmeval, max_tokens=max_tokens,
                prompt_format="text", stop=LMEVAL_GSM8K_COT_STOP, protocol="lm-eval/gsm8k_cot",
                config={"shots": shots, "exemplars": "gsm8k-cot.yaml v3.0"})

#: Qwen2.5-Math's evaluation, prompt type `qwen25-math-cot` (evaluation/utils.py): this system
#: message, the problem as the user turn, the model's chat template; greedy; 2048 new tokens
#: (math_eval.py --max_tokens_per_call default)
QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_MATH_MAX_TOKENS = 2048


def math_messages(item: dict) -> list[dict]:
    return [{"role": "system", "content": QWEN_MATH_SYSTEM},
            {"role": "user", "content": item["problem"]}]


def score_math(text: str, sample: Sample) -> Score:
    """Qwen2.5-Math's reading of the answer (boxed, else "the answer is", else the last
    number: :func:`~slmstudy.evals.extract.qwen_math_answer`), compared by math_equal; which
    rule read it is kept, and `boxed` (the study's earlier, stricter reading: the last box only)
    as a second named verdict."""
    pred, rule = qwen_math_answer(text)
    boxed = last_boxed(text)
    verdict = ("format_failure" if pred is None
               else "correct" if math_equal(pred, sample.gold) else "wrong")
    boxed_verdict = ("format_failure" if boxed is None
                     else "correct" if math_equal(boxed, sample.gold) else "wrong")
    return Score(verdict, pred, {"rule": rule, "boxed_extracted": boxed},
                 verdicts={"boxed": boxed_verdict})


def math500_task(items: list[dict], *, max_tokens: int = QWEN_MATH_MAX_TOKENS,
                 name: str = "math500") -> Task:
    samples = [Sample(id=it["id"], messages=math_messages(it), gold=it["answer"],
                      meta={"level": it["level"], "subject": it["subject"]}) for it in items]
    return Task(name=name, samples=samples, scorer=score_math, max_tokens=max_tokens,
                protocol="qwen25-math/math500",
                config={"template": MATH_TEMPLATE, "shots": 0,
                        "reference_max_tokens": QWEN_MATH_MAX_TOKENS})


def build_tasks(P) -> list[Task]:
    """The tasks of notebook 04 (MathParams): GSM8K (a seeded subset) under lm-eval's `gsm8k`
    protocol (`gsm8k_shots` train-split exemplars), with `gsm8k_cot` the same items under
    lm-eval's `gsm8k_cot`, with `gsm8k_chat` the 0-shot chat variant `gsm8k_chat`; MATH-500
    stratified by level under Qwen2.5-Math's protocol."""
    from .. import datasets as D

    tasks: list[Task] = []
    if P.gsm8k_n:
        items = D.seeded_subset(D.load_gsm8k(P.data_dir), P.gsm8k_n, P.seed)
        tasks.append(gsm8k_lmeval_task(items, D.load_gsm8k(P.data_dir, split="train"),
                                       shots=P.gsm8k_shots, max_tokens=P.gsm8k_max_tokens))
        if P.gsm8k_cot:
            tasks.append(gsm8k_cot_lmeval_task(items, max_tokens=P.gsm8k_max_tokens))
        if P.gsm8k_chat:
            tasks.append(gsm8k_task(items, max_tokens=P.gsm8k_max_tokens, name="gsm8k_chat"))
    if P.math500_n:
        items = D.proportional_subset(D.load_math500(P.data_dir), P.math500_n, "level", P.seed)
        tasks.append(math500_task(items, max_tokens=P.math500_max_tokens))
    return tasks
