"""Answer extraction from raw model output, and answer equivalence.

Every extractor takes the model's raw text and returns the answer, or None when no answer in
the expected format is found. None is a *format failure* and is counted apart from a wrong
answer. All functions here are pure and need no model.

- Multiple choice (CMMLU, C-Eval): `extract_choice`.
- GSM8K: `gsm8k_strict` (number after `####`), `gsm8k_flexible` (last number), `numbers_equal`.
- MATH-500: `last_boxed`, `normalize_math_answer`, `math_equal` (math-verify, sympy fallback).
- Code (HumanEval, MBPP): `extract_code`.
- Structured output: `extract_json`.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S)


def strip_reasoning(text: str) -> str:
    """Remove `<think>...</think>` blocks (reasoning models); an unclosed `<think>` drops the rest.

    Accepts any string; returns it unchanged when it has no think tags.
    """
    text = _THINK_BLOCK.sub("", text)
    start = text.find("<think>")
    return text if start < 0 else text[:start]


# --------------------------------------------------------------------------------------------
# Multiple choice
# --------------------------------------------------------------------------------------------

# Between a marker and its letter: spaces, markdown emphasis, one opening bracket or quote.
_OPEN = r"[\s*_]*[(\[{【「『\"'“‘]?[\s*_]*"
# A marker written as a heading closes its bracket first: 【答案】C, [答案] C.
_MARKER_CLOSE = r"[】\]」』)]?"
# Words allowed between 答案 and the letter (答案：B, 答案是 B, 正确答案应该为选项 C, 答案：选B).
_ZH_CONNECTOR = r"(?:\s|:|应该|应当|应|就|即|是|为|為|选项|选择|选|選)*"
_EN_CONNECTOR = r"(?:\s|:|is|would\s+be|should\s+be|will\s+be|option|choice)*"


@lru_cache(maxsize=16)
def _choice_patterns(choices: str) -> dict[str, list[re.Pattern[str]]]:
    letter = rf"([{re.escape(choices)}])(?![A-Za-z0-9_])"
    explicit = [
        re.compile(r"答案" + _MARKER_CLOSE + _ZH_CONNECTOR + _OPEN + letter),
        # 正确选项是 C, 正确的选项为 B, 正确的是 D (no 答案 in the sentence)
        re.compile(r"正确(?:的)?(?:选项|选择|答案)?(?:是|为|為|应该是|应为|:)" + _ZH_CONNECTOR + _OPEN + letter),
        re.compile(r"(?i:\banswer)" + rf"(?i:{_EN_CONNECTOR})" + _OPEN + letter),
        re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?" + _OPEN + letter),
    ]
    # 故选B / 应选 C / 选择：D, but not 选项A (which names an option rather than choosing it).
    choose = [re.compile(r"(?:选择|选|選)(?!项)(?:\s|:)*" + _OPEN + letter)]
    leading = [
        re.compile(
            r"^[\s*_]*[(\[【「]?" + rf"([{re.escape(choices)}])"
            r"(?:[)\]】」]|(?=\s*$)|(?=[.:、,，;；])|(?=\s+[^A-Za-z\s]))"
        )
    ]
    bracketed = [re.compile(rf"[(\[【「]([{re.escape(choices)}])[)\]】」]")]
    return {"explicit": explicit, "choose": choose, "leading": leading, "bracketed": bracketed}


def _last_match(patterns: list[re.Pattern[str]], text: str) -> str | None:
    best: tuple[int, str] | None = None
    for pattern in patterns:
        for match in pattern.finditer(text):
            if best is None or match.start() >= best[0]:
                best = (match.start(), match.group(1))
    return None if best is None else best[1]


def _first_match(patterns: list[re.Pattern[str]], text: str) -> str | None:
    best: tuple[int, str] | None = None
    for pattern in patterns:
        match = pattern.search(text)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), match.group(1))
    return None if best is None else best[1]


def _echoed_options(text: str, choices: str) -> bool:
    """Two or more lines that start with different option labels (`A. …` / `B、…` / `(C) …`):
    the question's option list echoed back, not an answer."""
    line = re.compile(rf"^[\s*_]*[(\[【]?([{re.escape(choices)}])(?:[)\]】]|[.、:])", re.M)
    return len({m.group(1) for m in line.finditer(text)}) > 1


def extract_choice(text: str | None, choices: str = "ABCD") -> str | None:
    """Return the chosen option letter (one of `choices`, upper case) or None (format failure).

    Accepts raw model output in Chinese or English, with full-width characters (`答案：Ｂ`).
    Tried in order, first hit wins:
    1. the FIRST explicit answer marker, as OpenCompass's `first_option_postprocess` takes the
       first: `答案：B`, `答案是 B`, `答案为（C）`, `【答案】C`, `答案应为"B"`,
       `正确答案应该是选项 D`, `正确选项是 C`, `The answer is D`, `Answer: (C)`, `\\boxed{B}`;
    2. the first "choose" phrase: `故选B`, `应选 C` (never `选项A`, which only names an option);
    3. a leading letter: `B`, `B.`, `(B)`, `B：北京`, but not the article in `A cat ...`;
    4. bracketed letters `(A)` anywhere, only if they all name the same letter.
    Tiers 3 and 4 give None when the text is the option list echoed back (lines `A. …`, `B. …`)
    or brackets two different letters (`(A) 1 (B) 2`).
    """
    if not text:
        return None
    normalized = unicodedata.normalize("NFKC", text)
    patterns = _choice_patterns(choices)
    for tier in ("explicit", "choose"):
        found = _first_match(patterns[tier], normalized)
        if found is not None:
            return found
    if _echoed_options(normalized, choices):
        return None
    bracketed = {m.group(1) for m in patterns["bracketed"][0].finditer(normalized)}
    if len(bracketed) > 1:  # an option list such as "(A) 1 (B) 2" is not an answer
        return None
    leading = _last_match(patterns["leading"], normalized)
    if leading is not None:
        return leading
    return bracketed.pop() if bracketed else None


# --------------------------------------------------------------------------------------------
# GSM8K numbers
# --------------------------------------------------------------------------------------------

# A minus sign right after a digit is subtraction or a date ("12-3", "2023-10"), not a sign.
_NUMBER = r"(?<!\d)-?(?:\$\s?)?(?:\d[\d,]*(?:\.\d+)?|\.\d+)%?"
_NUMBER_RE = re.compile(_NUMBER)
_STRICT_RE = re.compile(r"####\s*(" + _NUMBER + ")")


def normalize_number(text: str | int | float | Decimal | None) -> str | None:
    """Canonical decimal string for a number, or None if `text` is not one number.

    Accepts `1,000`, `$18`, `-3.50`, `7.`, `50%`, `.5`, ints, floats and Decimals:
    `"1,000" -> "1000"`, `"3.50" -> "3.5"`, `"$18." -> "18"`, `"-0.0" -> "0"`.
    """
    if text is None:
        return None
    cleaned = str(text).strip().replace(",", "").replace("$", "").replace(" ", "")
    cleaned = cleaned.rstrip(".").rstrip("%")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    value = value.normalize()
    return "0" if value.is_zero() else format(value, "f")


def gsm8k_strict(text: str | None) -> str | None:
    """The number after the first `####` (GSM8K answer format), normalised; None if absent.

    Also extracts the gold answer from a GSM8K `answer` field.
    """
    if not text:
        return None
    match = _STRICT_RE.search(text)
    return normalize_number(match.group(1)) if match else None


def gsm8k_flexible(text: str | None) -> str | None:
    """The last number anywhere in the text, normalised; None if the text has no number."""
    if not text:
        return None
    for candidate in reversed(_NUMBER_RE.findall(text)):
        number = normalize_number(candidate)
        if number is not None:
            return number
    return None


def numbers_equal(a: str | int | float | Decimal | None, b: str | int | float | Decimal | None) -> bool:
    """True when both are numbers with the same exact decimal value (`"1,000" == 1000`,
    `"3.50" == "3.5"`); False when either is None or not a number."""
    na, nb = normalize_number(a), normalize_number(b)
    return na is not None and nb is not None and Decimal(na) == Decimal(nb)


# --------------------------------------------------------------------------------------------
# MATH answers
# --------------------------------------------------------------------------------------------

_BOX_MACROS = ("\\boxed", "\\fbox")


def _balanced_braces(text: str, open_index: int) -> int | None:
    """Index just past the `}` matching the `{` at `open_index`; None if unbalanced.
    Backslash-escaped characters (`\\{`, `\\}`) are skipped."""
    depth = 0
    index = open_index
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


def last_boxed(text: str | None) -> str | None:
    """Content of the last `\\boxed{...}` or `\\fbox{...}` (nested braces kept), or None.

    Also accepts the brace-less form `\\boxed 5`. An unclosed last box (truncated output) is None.
    """
    if not text:
        return None
    start, macro = max((text.rfind(m), m) for m in _BOX_MACROS)
    if start < 0:
        return None
    index = start + len(macro)
    after_spaces = len(text) - len(text[index:].lstrip(" "))
    if after_spaces < len(text) and text[after_spaces] == "{":
        end = _balanced_braces(text, after_spaces)
        return None if end is None else text[after_spaces + 1 : end - 1].strip()
    if after_spaces > index:
        match = re.match(r"[^\s$]+", text[after_spaces:])
        return match.group(0) if match else None
    return None



def _brace_content(after: str) -> str:
    """What Qwen2.5-Math's parser keeps after the last "boxed": the balanced `{...}` content
    (an unclosed box keeps what is there), or, with no brace, the text up to the next "$".
    Not :func:`_balanced_braces`: Qwen's loop counts escaped braces (`\\{`) too and keeps an
    unclosed box, and the reading must be Qwen's."""
    if not after:
        return ""
    if after[0] != "{":
        return after.split("$")[0].strip()
    depth, out = 1, []
    for c in after[1:]:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                break
        out.append(c)
    return "".join(out)


_LAST_NUMBER_RE = re.compile(r"-?\d*\.?\d+")


def qwen_math_answer(text: str | None) -> tuple[str | None, str | None]:
    """(answer, rule) as Qwen2.5-Math's evaluation reads a MATH answer (QwenLM/Qwen2.5-Math,
    evaluation/parser.py `extract_answer`, data "math"), rule by rule, first that applies:
    "minerva" (`final answer is $…$. I hope`), "boxed" (the text after the last "boxed": its
    balanced braces, or up to "$"), "answer_is" (after the last "he answer is"),
    "final_answer_is", "答案是" (after the first, to the next blank line), "last_number" (the
    last `-?\\d*\\.?\\d+` once commas are gone). Then newlines and following spaces are removed,
    and a leading ":" and a final "." or "/" dropped. Qwen's `strip_string` and grader are not
    copied: the answer goes to :func:`math_equal` (normalisation, math-verify, sympy).
    (None, None) when no rule finds anything: a format failure."""
    if not text:
        return None, None
    t = text.replace("\u043a\u0438", "")
    if "final answer is $" in t and "$. I hope" in t:
        pred, rule = t.split("final answer is $", 1)[1].split("$. I hope", 1)[0].strip(), "minerva"
    elif "boxed" in t:
        pred, rule = _brace_content(t.split("boxed")[-1]), "boxed"
    elif "he answer is" in t:
        pred, rule = t.split("he answer is")[-1].strip(), "answer_is"
    elif "final answer is" in t:
        pred, rule = t.split("final answer is")[-1].strip(), "final_answer_is"
    elif "答案是" in t:
        pred, rule = t.split("答案是")[1].strip().split("\n\n")[0].strip(), "答案是"
    else:
        found = _LAST_NUMBER_RE.findall(t.replace(",", ""))
        pred, rule = (found[-1], "last_number") if found else ("", None)
    pred = re.sub(r"\n\s*", "", pred)
    if pred.startswith(":"):
        pred = pred[1:]
    if pred.endswith("."):
        pred = pred[:-1]
    if pred.endswith("/"):
        pred = pred[:-1]
    return (pred, rule) if pred.strip() else (None, None)

def _unwrap_text_macros(s: str) -> str:
    for macro in ("\\text{", "\\textbf{", "\\mbox{", "\\mathrm{"):
        while (start := s.find(macro)) >= 0:
            open_index = start + len(macro) - 1
            end = _balanced_braces(s, open_index)
            if end is None:
                break
            s = s[:start] + s[open_index + 1 : end - 1] + s[end:]
    return s


def normalize_math_answer(answer: str) -> str:
    """Plain-string canonical form of a LaTeX answer (the MATH `strip_string` habits).

    Unwraps a surrounding `\\boxed{}` and `$...$`, drops `\\left`/`\\right`, spacing macros
    (`\\!`, `\\,`), spaces, degree marks, `\\%`, trailing units written `\\text{ cm}`, a leading
    `x =`; maps `\\dfrac`/`\\tfrac` to `\\frac`, `\\frac12` to `\\frac{1}{2}`, `\\sqrt2` to
    `\\sqrt{2}`, `a/b` to `\\frac{a}{b}` and `.5` to `0.5`.
    """
    s = answer.strip()
    if s.startswith(_BOX_MACROS):
        s = last_boxed(s) or s
    s = s.strip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)]
    s = s.replace("\n", "").rstrip(".")
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", s)
    s = re.sub(r"\\[!,;:](?![A-Za-z])|\\q?quad(?![A-Za-z])", "", s)
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|°", "", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "")
    for unit_marker in ("\\text{ ", "\\mbox{ "):
        if unit_marker in s and not s.startswith(unit_marker):
            s = s.split(unit_marker)[0]
    s = _unwrap_text_macros(s)
    s = s.replace(" ", "")
    s = re.sub(r"^[A-Za-z]=(?=.)", "", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = re.sub(r"(?<![\d}])\.(\d)", r"0.\1", s)
    if re.fullmatch(r"-?\d+/\d+", s):
        numerator, denominator = s.split("/")
        s = f"\\frac{{{numerator}}}{{{denominator}}}"
    return s.rstrip(".")


@lru_cache(maxsize=1)
def _math_verify() -> tuple[Any, Any] | None:
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    return parse, verify


def _as_latex_math(s: str) -> str:
    """math-verify only reads LaTeX inside math delimiters or `\\boxed{}`."""
    if "$" in s or "\\boxed" in s or "\\(" in s or "\\[" in s:
        return s
    return f"${s}$"


def _math_verify_equal(pred: str, gold: str) -> bool | None:
    """math-verify verdict, or None when it cannot parse one side."""
    parse, verify = _math_verify()  # type: ignore[misc]
    # math-verify's timeouts use SIGALRM, which only works in the main thread.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        gold_parsed = parse(_as_latex_math(gold), parsing_timeout=timeout)
        pred_parsed = parse(_as_latex_math(pred), parsing_timeout=timeout)
        if not gold_parsed or not pred_parsed:
            return None
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except Exception:  # math-verify raises on pathological input: no verdict, so the caller
        return None     # falls back to the sympy comparison, as math_equal's docstring says


_SAFE_IDENTIFIERS = {"sqrt", "pi", "oo"}


def _latex_to_python(s: str) -> str | None:
    """Turn simple LaTeX (fractions, roots, pi, powers) into a sympy-parsable string.

    Returns None for anything outside a small safe grammar, because sympy's parse_expr
    evaluates Python and model output is untrusted.
    """
    if len(s) > 120:
        return None
    t = s
    previous = None
    while previous != t:
        previous = t
        t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", t)
        t = re.sub(r"\\sqrt\[([^\]]*)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", t)
        t = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", t)
    for latex, python in (("\\pi", "pi"), ("\\cdot", "*"), ("\\times", "*"), ("\\infty", "oo"), ("^", "**")):
        t = t.replace(latex, python)
    t = t.replace("{", "(").replace("}", ")")
    if not re.fullmatch(r"[0-9A-Za-z+\-*/(). ]*", t):
        return None
    identifiers = set(re.findall(r"[A-Za-z]+", t))
    if any(len(name) > 1 and name not in _SAFE_IDENTIFIERS for name in identifiers):
        return None
    if t.count("**") > 3 or re.search(r"\*\*\(*\d{4,}", t):
        return None
    return t or None


def _to_sympy(s: str) -> Any | None:
    try:
        import sympy
        from sympy.parsing.sympy_parser import (
            implicit_multiplication_application,
            parse_expr,
            standard_transformations,
        )
    except ImportError:
        return None
    try:  # needs antlr4 at the exact version sympy was built against; often missing
        from sympy.parsing.latex import parse_latex

        return parse_latex(s)
    except Exception:
        pass
    python = _latex_to_python(s)
    if python is None:
        return None
    try:
        transformations = standard_transformations + (implicit_multiplication_application,)
        expr = parse_expr(python, transformations=transformations, evaluate=True)
    except Exception:
        return None
    return expr if isinstance(expr, sympy.Basic) else None


def _sympy_equal(pred: str, gold: str) -> bool:
    a = _to_sympy(normalize_math_answer(pred))
    b = _to_sympy(normalize_math_answer(gold))
    if a is None or b is None:
        return False
    try:
        import sympy

        difference = sympy.simplify(a - b)
        if difference == 0:
            return True
        if difference.free_symbols:
            return False
        scale = max(1.0, abs(complex(sympy.N(b))))
        return abs(complex(sympy.N(difference))) < 1e-6 * scale
    except Exception:
        return False


def math_equal(pred: str | None, gold: str | None, *, use_math_verify: bool | None = None) -> bool:
    """True when the predicted MATH answer is equivalent to the gold answer.

    Accepts LaTeX or plain strings, with or without `\\boxed{}`/`$`: `\\frac{1}{2}`, `0.5` and
    `\\dfrac12` are all equal. Order: identical after `normalize_math_answer`, else the
    math-verify verdict (`use_math_verify=None` means "when importable"), else (math-verify
    missing, disabled, or unable to parse a side) a sympy comparison of simple expressions.
    None on either side is False.
    """
    if pred is None or gold is None:
        return False
    if normalize_math_answer(pred) == normalize_math_answer(gold):
        return True
    if use_math_verify is True and _math_verify() is None:
        raise RuntimeError(
            "math_equal(use_math_verify=True) but math_verify is not importable; "
            "install it with `pip install math-verify`."
        )
    if use_math_verify is not False and _math_verify() is not None:
        verdict = _math_verify_equal(pred, gold)
        if verdict is not None:
            return verdict
    return _sympy_equal(pred, gold)


# --------------------------------------------------------------------------------------------
# Code
# --------------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"```[ \t]*([\w+.#-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)
_PYTHON_LANGS = {"python", "py", "python3", "py3", ""}


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) for every ``` fence; an unclosed last fence runs to the end."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE_RE.finditer(text)]


def parses(code: str) -> bool:
    """True when `code` compiles as Python (nothing is run)."""
    try:
        compile(code, "<extracted>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def defines(code: str, name: str | None) -> bool:
    """True when `code` has a line `def name(` (or `async def name(`)."""
    return bool(name) and re.search(
        rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.M) is not None


def extract_code(text: str | None, entry_point: str | None = None) -> str:
    """Python source from a model answer.

    Accepts raw output with ```python / ```py / bare ``` fences, or plain code. With fences,
    the python-tagged (or untagged) blocks are candidates (all blocks if none is python).
    When `entry_point` is given, the LAST candidate that defines `def entry_point(` and
    compiles wins, then the last one that defines it; otherwise the first candidate that
    compiles, then the first. Without any fence the whole text is returned.
    """
    if not text:
        return ""
    blocks = _fenced_blocks(text)
    if not blocks:
        return text.strip("\n")
    candidates = [body for lang, body in blocks if lang in _PYTHON_LANGS] or [b for _, b in blocks]
    if entry_point:
        defining = [c for c in candidates if defines(c, entry_point)]
        for code in reversed(defining):
            if parses(code):
                return code
        if defining:
            return defining[-1]
    for code in candidates:
        if parses(code):
            return code
    return candidates[0]


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------

_CLOSERS = {"{": "}", "[": "]"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _matching_bracket(text: str, start: int) -> int | None:
    """Index just past the bracket closing the one at `start`, skipping JSON strings;
    None if it never closes or the nesting is crossed (`{]`)."""
    stack: list[str] = []
    in_string = False
    index = start
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char in "}]":
            if not stack or stack.pop() != char:
                return None
            if not stack:
                return index + 1
        index += 1
    return None


def _looks_like_json_start(text: str, start: int) -> bool:
    rest = text[start + 1 :].lstrip()
    if not rest:
        return True
    if text[start] == "{":
        return rest[0] in '"}'
    return rest[0] in '"{[]-0123456789tfn'


def _decode_container(chunk: str) -> Any:
    obj = _STRICT_DECODER.decode(chunk)
    if not isinstance(obj, (dict, list)):
        raise ValueError(f"expected a JSON object or array, found {type(obj).__name__}")
    return obj


def extract_json(text: str | None) -> tuple[Any | None, str | None]:
    """First valid JSON object or array in the text: `(obj, None)`, or `(None, error)`.

    Accepts bare JSON, JSON in ``` / ```json fences, or JSON inside prose. Order: the whole
    text, then each fenced block, then a bracket-balanced scan of the text that skips a
    balanced but invalid `{...}` span as a whole (so `{a: [1, 2]}` is an error, not `[1, 2]`).
    NaN/Infinity are rejected (not JSON). A JSON-looking opener that never closes stops the
    scan with a "truncated" error.
    """
    if not text or not text.strip():
        return None, "empty output: expected a JSON object or array"
    for chunk in [text.strip()] + [body.strip() for lang, body in _fenced_blocks(text) if lang in ("json", "")]:
        try:
            return _decode_container(chunk), None
        except ValueError:
            pass
    first_error: str | None = None
    index = 0
    while True:
        starts = [i for i in (text.find("{", index), text.find("[", index)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        end = _matching_bracket(text, start)
        if end is None:
            if _looks_like_json_start(text, start):
                closer = _CLOSERS[text[start]]
                return None, first_error or f"JSON starting at char {start} is truncated (no closing '{closer}')"
            index = start + 1
            continue
        try:
            return _decode_container(text[start:end]), None
        except ValueError as exc:
            first_error = first_error or f"JSON at char {start} is invalid: {exc}"
            index = end
    return None, first_error or f"no JSON object or array found in {len(text)} chars of output"
