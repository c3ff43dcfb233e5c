"""Math protocols against their references: lm-eval's `gsm8k_cot` (its installed task file, its
own regex filters and exact-match metric) and Qwen2.5-Math's answer reading for MATH-500."""

from pathlib import Path

import pytest
import yaml

from slmstudy import datasets as D
from slmstudy.evals import mathx
from slmstudy.evals.extract import qwen_math_answer

lm_eval = pytest.importorskip("lm_eval")


@pytest.fixture(scope="module")
def cot_yaml():
    return yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k-cot.yaml")
                          .read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def gsm8k_items():
    try:
        return D.load_gsm8k()[:40]
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")


def test_gsm8k_cot_exemplars_stop_and_template_are_lm_evals(cot_yaml):
    samples = cot_yaml["fewshot_config"]["samples"]
    assert [(s["question"], s["target"]) for s in samples] == list(mathx.LMEVAL_GSM8K_COT_EXEMPLARS)
    assert cot_yaml["num_fewshot"] == 8 and cot_yaml["fewshot_config"]["sampler"] == "first_n"
    assert tuple(cot_yaml["generation_kwargs"]["until"]) == mathx.LMEVAL_GSM8K_COT_STOP
    assert cot_yaml["doc_to_text"] == "Q: {{question}}\nA:"
    strict = cot_yaml["filter_list"][0]["filter"][0]["regex_pattern"]
    assert strict == mathx._LMEVAL_COT_STRICT.pattern
    item = {"question": "What is 2 + 3?"}
    prompt = mathx.lmeval_gsm8k_cot_prompt(item)
    # lm-eval: doc_to_text(shot) + target_delimiter " " + target, shots joined by "\n\n"
    expected = "".join(f"Q: {s['question']}\nA: {s['target']}\n\n" for s in samples)
    assert prompt == expected + "Q: What is 2 + 3?\nA:"
    assert mathx.lmeval_gsm8k_cot_prompt(item, 2).count("Q: ") == 3
    with pytest.raises(ValueError, match="0-8"):
        mathx.gsm8k_cot_lmeval_task([], shots=9)


TEXTS = [
    " Tom has 3 apples. 3 + 2 = 5. The answer is 5.\n\n",
    " The answer is 1,234.5 dollars.",
    " So 10 - 4 = 6. The answer is 6",  # nothing after the number: lm-eval's strict misses it
    " The answer is $18.",
    " The answer is -3. Then again the answer is 7.",
    " I think it is 12.",
    " no number here",
    " 40 + 2 = 42.\nThe answer is 42.\nQ",
]


def test_gsm8k_cot_extraction_equals_lm_evals_filters_and_metric(cot_yaml, gsm8k_items):
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    strict_cfg, flex_cfg = (f["filter"][0] for f in cot_yaml["filter_list"])
    strict_f = RegexFilter(strict_cfg["regex_pattern"])
    flex_f = RegexFilter(flex_cfg["regex_pattern"], group_select=flex_cfg["group_select"])
    metric = next(m for m in cot_yaml["metric_list"] if m["metric"] == "exact_match")
    task = mathx.gsm8k_cot_lmeval_task(gsm8k_items[:1])
    sample = task.samples[0]
    gold = sample.data["answer"].split("####")[-1].strip()  # the yaml's doc_to_target
    for text in TEXTS + [f" The answer is {gold}.", f" The answer is {gold},000."]:
        ours = mathx.lmeval_gsm8k_cot_extract(text)
        theirs = [strict_f.apply([[text]], [{}])[0][0], flex_f.apply([[text]], [{}])[0][0]]
        assert [x if x is not None else "[invalid]" for x in ours] == theirs, text
        sc = task.scorer(text, sample)
        for ext, verdict in ((theirs[0], sc.verdict), (theirs[1], sc.verdicts["flexible"])):
            em = exact_match_hf_evaluate([ext], [gold], regexes_to_ignore=metric["regexes_to_ignore"],
                                         ignore_case=metric["ignore_case"],
                                         ignore_punctuation=metric["ignore_punctuation"])["exact_match"]
            assert (verdict == "correct") == bool(em), (text, ext, verdict)
    assert task.scorer(" 2 + 4 = 6. The answer is 6", sample).verdict == "format_failure"


def test_gsm8k_cot_task_shape(gsm8k_items):
    task = mathx.gsm8k_cot_lmeval_task(gsm8k_items[:3])
    assert task.protocol == "lm-eval/gsm8k_cot" and task.prompt_format == "text"
    assert task.stop == mathx.LMEVAL_GSM8K_COT_STOP and task.max_tokens == 256
    assert all(s.prompt.count("\nA: ") == 8 and s.prompt.endswith("\nA:") for s in task.samples)
    for s, it in zip(task.samples, gsm8k_items[:3]):  # the reference's final line, reworded
        assert task.scorer(f" Step. The answer is {it['target']}.", s).verdict == "correct"


@pytest.mark.parametrize("text, answer, rule", [
    ("so $\\boxed{\\frac{1}{2}}$ and more", "\\frac{1}{2}", "boxed"),
    ("first \\boxed{3} then \\boxed{4}", "4", "boxed"),
    ("\\boxed 7$ done", "7", "boxed"),
    ("unclosed \\boxed{12", "12", "boxed"),
    ("Thus the answer is 14/3.", "14/3", "answer_is"),
    ("The final answer is $5$. I hope it is correct.", "5", "minerva"),
    ("My final answer is 9", "9", "final_answer_is"),
    ("所以答案是 8\n\n其他", "8", "答案是"),
    ("we get 1,000 and then 2.5", "2.5", "last_number"),
    ("answer:\n  x\n  = 3.", "3", "last_number"),
    ("no digits at all", None, None),
    ("", None, None),
])
def test_qwen_math_answer_follows_qwens_order(text, answer, rule):
    assert qwen_math_answer(text) == (answer, rule)


def test_math500_reference_protocol():
    try:
        items = D.load_math500()
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")
    task = mathx.math500_task(items)
    assert task.protocol == "qwen25-math/math500" and task.max_tokens == 2048
    assert task.samples[0].messages[0] == {"role": "system", "content": mathx.QWEN_MATH_SYSTEM}
    s = next(s for s in task.samples if s.gold == "\\frac{14}{3}")
    sc = task.scorer("So the answer is 14/3.", s)  # unboxed: Qwen's reading finds it
    assert sc.verdict == "correct" and sc.verdicts["boxed"] == "format_failure"
    assert sc.detail["rule"] == "answer_is"
    sc = task.scorer("we try 4 and then 3", s)
    assert sc.verdict == "wrong" and sc.detail["rule"] == "last_number"
