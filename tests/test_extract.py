"""Answer extraction and equivalence: pure functions, no model."""

from __future__ import annotations

import importlib.util

import pytest

from slmstudy.evals.extract import (
    extract_choice,
    extract_code,
    extract_json,
    gsm8k_flexible,
    gsm8k_strict,
    last_boxed,
    math_equal,
    normalize_math_answer,
    normalize_number,
    numbers_equal,
    strip_reasoning,
)

HAS_MATH_VERIFY = importlib.util.find_spec("math_verify") is not None
HAS_SYMPY = importlib.util.find_spec("sympy") is not None

# --------------------------------------------------------------------------------------------
# Multiple choice
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("答案：B", "B"),
        ("答案:B", "B"),
        ("答案：Ｂ", "B"),  # full-width letter
        ("答案：（Ｃ）", "C"),  # full-width brackets
        ("答案是 B", "B"),
        ("答案是：D。", "D"),
        ("答案为（C）", "C"),
        ("正确答案应该是选项C", "C"),
        ("答案：选B", "B"),
        ("**答案：B**", "B"),
        ("The answer is D", "D"),
        ("The correct answer is (B).", "B"),
        ("Answer: C", "C"),
        ("最终答案是 $\\boxed{A}$", "A"),
        ("故选B", "B"),
        ("(A)", "A"),
        ("B", "B"),
        ("B.", "B"),
        ("B. 北京", "B"),
        ("C：长江", "C"),
        ("  D\n", "D"),
    ],
)
def test_extract_choice_finds_the_answer(text: str, expected: str) -> None:
    assert extract_choice(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        # the article "A" must not beat an explicit marker later in the text
        ("A is a common distractor here. The answer is C.", "C"),
        ("A cat is not a dog, so the answer is D", "D"),
        # an explicit marker wins over "选项A"; of two markers the FIRST counts, as in
        # OpenCompass's first_option_postprocess (a later "答案" is often a restated question)
        ("答案是B，因为选项A错误", "B"),
        ("我认为选项A和B都不对，答案：D", "D"),
        ("起初我以为答案是A，但仔细计算后，答案是C", "A"),
        ("答案：B\n\n解析：选项A中的说法……", "B"),
        # markers the reference accepts that used to be format failures
        ("【答案】C", "C"),
        ("答案应为\"B\"", "B"),
        ("答案应为“D”。", "D"),
        ("正确选项是 C", "C"),
        ("正确的是D", "D"),
    ],
)
def test_extract_choice_takes_the_first_explicit_marker(text: str, expected: str) -> None:
    assert extract_choice(text) == expected


@pytest.mark.parametrize("text", ["A. 北京\nB. 上海\nC. 广州\nD. 深圳", "A、苹果\nB、香蕉",
                                  "(A) 1\n(B) 2\n(C) 3"])
def test_an_echoed_option_list_is_not_answer_a(text: str) -> None:
    assert extract_choice(text) is None


def test_math_equal_falls_back_to_sympy_when_math_verify_raises(monkeypatch) -> None:
    from slmstudy.evals import extract as X

    if X._math_verify() is None:
        pytest.skip("math-verify not installed")

    def broken_parse(*args, **kwargs):
        raise ValueError("pathological input")

    monkeypatch.setattr(X, "_math_verify", lambda: (broken_parse, lambda *a, **k: True))
    assert X.math_equal("\\frac{1}{2}", "0.5") is True   # sympy decides, not "False on error"
    assert X.math_equal("\\frac{1}{3}", "0.5") is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "A cat sat on the mat.",  # an English article, no answer
        "我不确定。",
        "答案不是A",  # negation: not an answer
        "选项A正确吗？我也不知道",  # "选项A" names an option, it does not choose one
        "答案：E",  # not one of the four choices
        "Answer: Because it is warm",
        "(A) 1 (B) 2 (C) 3 (D) 4",  # a list of options, not an answer
        "ｂ",  # lower case is not accepted
    ],
)
def test_extract_choice_format_failures_are_none(text: str | None) -> None:
    assert extract_choice(text) is None


def test_extract_choice_respects_the_choice_set() -> None:
    assert extract_choice("答案：E", choices="ABCDE") == "E"
    assert extract_choice("答案：E") is None


def test_strip_reasoning() -> None:
    assert strip_reasoning("<think>答案是A？</think>答案：B") == "答案：B"
    assert strip_reasoning("<think>unfinished") == ""
    assert extract_choice(strip_reasoning("<think>答案是A</think>最终答案：C")) == "C"


# --------------------------------------------------------------------------------------------
# GSM8K
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1,000", "1000"),
        ("1000", "1000"),
        ("$18", "18"),
        ("18.", "18"),
        ("3.50", "3.5"),
        ("-7", "-7"),
        ("50%", "50"),
        (".5", "0.5"),
        ("-0.0", "0"),
        ("1,234,567.890", "1234567.89"),
        (42, "42"),
        ("twelve", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_number(raw, expected) -> None:
    assert normalize_number(raw) == expected


def test_gsm8k_strict_takes_the_number_after_hashes() -> None:
    assert gsm8k_strict("She pays 3 * 4 = 12 dollars.\n#### 12") == "12"
    assert gsm8k_strict("#### $1,000.") == "1000"
    assert gsm8k_strict("####-5") == "-5"
    assert gsm8k_strict("#### 3.50") == "3.5"
    # the first #### wins (a model that rambles on into another question)
    assert gsm8k_strict("#### 7\n\nQuestion: ...\n#### 9") == "7"


def test_gsm8k_strict_without_hashes_is_a_format_failure() -> None:
    assert gsm8k_strict("The answer is 12.") is None
    assert gsm8k_strict("#### twelve") is None
    assert gsm8k_strict(None) is None


def test_gsm8k_flexible_takes_the_last_number() -> None:
    assert gsm8k_flexible("It costs $3.50 each, so 4 cost $14.00.") == "14"
    assert gsm8k_flexible("The total is 1,000.") == "1000"
    assert gsm8k_flexible("答案是18元") == "18"
    assert gsm8k_flexible("5 apples minus 8 apples is -3") == "-3"
    assert gsm8k_flexible("He saved 25% of it") == "25"
    assert gsm8k_flexible("12-3") == "3"  # subtraction, not -3
    assert gsm8k_flexible("20 - 5") == "5"
    assert gsm8k_flexible("It cost -$5") == "-5"
    assert gsm8k_flexible("no digits here") is None


def test_numbers_equal() -> None:
    assert numbers_equal("1,000", "1000")
    assert numbers_equal("3.50", "3.5")
    assert numbers_equal("$18.", 18)
    assert numbers_equal("0.5", ".5")
    assert not numbers_equal("1000", "100")
    assert not numbers_equal(None, "1")
    assert not numbers_equal("abc", "abc")


def test_gsm8k_gold_vs_prediction_round_trip() -> None:
    gold = gsm8k_strict("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 1,008")
    assert numbers_equal(gsm8k_flexible("So she makes $1008 every day."), gold)
    assert numbers_equal(gsm8k_strict("... #### 1008.00"), gold)


# --------------------------------------------------------------------------------------------
# MATH
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("So the answer is $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
        ("\\boxed{1} first, finally \\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{\\sqrt{2}}{2}"),
        ("\\fbox{x^{2}+1}", "x^{2}+1"),
        ("\\boxed{1} then \\fbox{2}", "2"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
        ("\\boxed {7}", "7"),
        ("$\\boxed 5$", "5"),
        ("\\boxed{\\text{(B)}}", "\\text{(B)}"),
        ("no box at all", None),
        ("truncated \\boxed{\\frac{1}{2", None),
        (None, None),
    ],
)
def test_last_boxed(text: str | None, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("\\dfrac12", "\\frac{1}{2}"),
        ("\\tfrac{1}{2}", "\\frac{1}{2}"),
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("90^\\circ", "90"),
        ("90^{\\circ}", "90"),
        ("5\\text{ cm}", "5"),
        ("\\text{Monday}", "Monday"),
        ("10\\%", "10"),
        ("x = 3", "3"),
        ("\\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),
        ("$0.5$", "0.5"),
        (".5", "0.5"),
        ("3/4", "\\frac{3}{4}"),
        ("\\sqrt2", "\\sqrt{2}"),
        ("1\\!000", "1000"),
    ],
)
def test_normalize_math_answer(raw: str, expected: str) -> None:
    assert normalize_math_answer(raw) == expected


EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"),
    ("0.5", "\\frac{1}{2}"),
    ("\\dfrac12", "\\frac{1}{2}"),
    ("\\dfrac12", "0.5"),
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"),
    ("90^\\circ", "90"),
    ("5\\text{ cm}", "5"),
    ("2\\pi", "2\\pi"),
    ("x = 3", "3"),
    ("3.50", "3.5"),
]
NOT_EQUIVALENT = [
    ("0.5", "\\frac{1}{3}"),
    ("\\frac{3}{4}", "0.7"),
    ("2\\pi", "\\pi"),
    ("\\sqrt{2}", "2"),
    ("1", "-1"),
]


@pytest.mark.skipif(not HAS_MATH_VERIFY, reason="math-verify not installed")
@pytest.mark.parametrize("pred, gold", EQUIVALENT)
def test_math_equal_with_math_verify(pred: str, gold: str) -> None:
    assert math_equal(pred, gold, use_math_verify=True)


@pytest.mark.skipif(not HAS_MATH_VERIFY, reason="math-verify not installed")
@pytest.mark.parametrize("pred, gold", NOT_EQUIVALENT)
def test_math_not_equal_with_math_verify(pred: str, gold: str) -> None:
    assert not math_equal(pred, gold, use_math_verify=True)


@pytest.mark.skipif(not HAS_SYMPY, reason="sympy not installed")
@pytest.mark.parametrize("pred, gold", EQUIVALENT)
def test_math_equal_sympy_fallback(pred: str, gold: str) -> None:
    assert math_equal(pred, gold, use_math_verify=False)


@pytest.mark.skipif(not HAS_SYMPY, reason="sympy not installed")
@pytest.mark.parametrize("pred, gold", NOT_EQUIVALENT)
def test_math_not_equal_sympy_fallback(pred: str, gold: str) -> None:
    assert not math_equal(pred, gold, use_math_verify=False)


def test_math_equal_missing_answer_is_false() -> None:
    assert not math_equal(None, "1")
    assert not math_equal(last_boxed("I could not solve it."), "1")


@pytest.mark.skipif(not HAS_SYMPY, reason="sympy not installed")
def test_math_fallback_never_evaluates_python(tmp_path) -> None:
    """sympy's parse_expr evaluates Python: model output must not reach it unfiltered."""
    marker = tmp_path / "pwned"
    hostile = f"__import__('os').system('touch {marker}')"
    assert not math_equal(hostile, "0", use_math_verify=False)
    assert not marker.exists()
    assert not math_equal("2^{2^{2^{2^{2^{99999}}}}}", "1", use_math_verify=False)


# --------------------------------------------------------------------------------------------
# Code
# --------------------------------------------------------------------------------------------


def test_extract_code_from_python_fence() -> None:
    text = "Here is my solution:\n```python\ndef add(a, b):\n    return a + b\n```\nHope it helps."
    assert extract_code(text) == "def add(a, b):\n    return a + b"


def test_extract_code_bare_fence_and_py_tag() -> None:
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code("```py\nx = 2\n```") == "x = 2"


def test_extract_code_without_fence_returns_whole_text() -> None:
    completion = "    return a + b\n"
    assert extract_code(completion) == "    return a + b"


def test_extract_code_prefers_the_block_defining_the_entry_point() -> None:
    text = (
        "```python\nimport math\n```\n"
        "```python\ndef add(a, b):\n    return a + b\n```\n"
        "Usage:\n```python\nprint(add(1, 2))\n```"
    )
    assert extract_code(text, entry_point="add") == "def add(a, b):\n    return a + b"


def test_extract_code_prefers_the_last_definition_that_compiles() -> None:
    text = (
        "First try:\n```python\ndef f(x):\n    return x\n```\n"
        "Better:\n```python\ndef f(x):\n    return x * 2\n```\n"
        "Even better (cut off):\n```python\ndef f(x):\n    return (x *"
    )
    assert extract_code(text, entry_point="f") == "def f(x):\n    return x * 2"


def test_extract_code_skips_non_python_blocks() -> None:
    text = "```bash\npip install numpy\n```\n```python\nimport numpy\n```"
    assert extract_code(text) == "import numpy"


def test_extract_code_unclosed_fence_runs_to_the_end() -> None:
    assert extract_code("```python\ndef g():\n    return 1\n") == "def g():\n    return 1\n"


def test_extract_code_empty() -> None:
    assert extract_code("") == ""
    assert extract_code(None) == ""


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"name": "北京", "population": 21.9}', {"name": "北京", "population": 21.9}),
        ('好的，结果如下：{"city": "上海", "tags": ["a"]}。希望有帮助！', {"city": "上海", "tags": ["a"]}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ("Here you go:\n```\n[1, 2, 3]\n```", [1, 2, 3]),
        ('Use the format {name}. Result: {"name": "x"}', {"name": "x"}),
        ('The string has braces: {"text": "a } b {", "n": 1} done', {"text": "a } b {", "n": 1}),
        ('{"outer": {"inner": [1, {"deep": true}]}} trailing', {"outer": {"inner": [1, {"deep": True}]}}),
        ('smile :-{ and then {"a": 1}', {"a": 1}),
    ],
)
def test_extract_json_finds_the_first_valid_value(text: str, expected) -> None:
    obj, error = extract_json(text)
    assert error is None
    assert obj == expected


@pytest.mark.parametrize(
    "text, error_part",
    [
        ("", "empty"),
        ("no json here", "no JSON"),
        ("{'a': 1}", "invalid"),  # Python dict, not JSON
        ("{a: [1, 2]}", "invalid"),  # a fragment of broken JSON does not count
        ('{"a": NaN}', "NaN"),
        ('{"a": {"b": 1}, "c": ', "truncated"),  # cut off by max_tokens
        ('"just a string"', "no JSON"),
    ],
)
def test_extract_json_errors(text: str, error_part: str) -> None:
    obj, error = extract_json(text)
    assert obj is None
    assert error is not None and error_part in error
