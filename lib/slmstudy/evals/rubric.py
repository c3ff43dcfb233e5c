"""Programmatic rubric checks for open-ended answers (the project's own Chinese tasks).

A rubric is a list of checks, each a small dict from `data/zh_tasks.yaml`:

    {type: contains_any, values: ["2月", "二月"]}          an expected fact is present
    {type: contains_all, values: ["王五", "深圳"]}         every fact is present (an item may be a
                                                          list of alternatives)
    {type: min_count, values: [Tencent, Baidu, ...], n: 3} at least n of the values are present
    {type: forbidden, values: ["圣诞"]}                    none of these is present
    {type: regex, pattern: "..."}                          the format is obeyed (re.search)
    {type: regex_count, pattern: "...", min: 3, max: 5}   how many times a pattern occurs
                                                          (multiline; min defaults to 1, or to 0
                                                          when a max is given)
    {type: max_chars, n: 30} / {type: min_chars, n: 10}    length in non-space characters
    {type: cjk_share_min, value: 0.6}                      the answer is in Chinese
    {type: cjk_share_max, value: 0.1}                      the answer is NOT in Chinese
    {type: final_answer, value: 5}                         the number after the last `答案：`
    {type: json_object, required: [name, age]}             a JSON object with these keys
    {type: no_echo, n: 10}                                 no run of n characters copied verbatim
                                                          from the prompt (a model that repeats
                                                          the question must not pass the fact
                                                          checks with the question's own words)

Optional on every check: `ignore_case` (default true for Latin text), `kind` (fact / forbidden /
format / language; a default follows from the type) and `note`. Every function here is pure.

A task's verdict: ``correct`` if every check passes; ``format_failure`` if the output is empty or
a check that *extracts* an answer (final_answer, json_object) finds none; else ``wrong``. The share
of checks passed is the task's partial score.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import StudyError
from .extract import extract_json, normalize_number, numbers_equal, strip_reasoning

CHECK_TYPES = {
    # type: (default kind, required keys, extracts an answer)
    "contains_any": ("fact", ("values",), False),
    "contains_all": ("fact", ("values",), False),
    "min_count": ("fact", ("values", "n"), False),
    "forbidden": ("forbidden", ("values",), False),
    "regex": ("format", ("pattern",), False),
    "regex_count": ("format", ("pattern",), False),
    "max_chars": ("format", ("n",), False),
    "min_chars": ("format", ("n",), False),
    "cjk_share_min": ("language", ("value",), False),
    "cjk_share_max": ("language", ("value",), False),
    "final_answer": ("fact", ("value",), True),
    "json_object": ("format", (), True),
    "no_echo": ("forbidden", ("n",), False),
}
KINDS = ("fact", "forbidden", "format", "language")
_OPTIONAL = {"kind", "note", "ignore_case", "min", "max", "marker", "required"}


def validate_check(check: dict, where: str = "") -> None:
    """Refuse an unknown type, a missing or unknown key, with the task it belongs to."""
    t = check.get("type")
    if t not in CHECK_TYPES:
        raise StudyError(f"{where}: unknown rubric check type {t!r}; known: {sorted(CHECK_TYPES)}")
    _, required, _ = CHECK_TYPES[t]
    missing = [k for k in required if k not in check]
    if missing:
        raise StudyError(f"{where}: check {t} needs {missing}")
    unknown = set(check) - {"type", *required} - _OPTIONAL
    if unknown:
        raise StudyError(f"{where}: check {t} has unknown keys {sorted(unknown)}")
    if check.get("kind", CHECK_TYPES[t][0]) not in KINDS:
        raise StudyError(f"{where}: kind must be one of {KINDS}")
    if t in ("regex", "regex_count"):
        re.compile(check["pattern"])


# ------------------------------------------------------------------------------ text measures


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0xF900 <= cp <= 0xFAFF)


def cjk_share(text: str) -> float:
    """CJK ideographs ÷ (CJK ideographs + Latin letters); digits, spaces, punctuation ignored.
    0.0 for text without letters of either kind."""
    cjk = sum(_is_cjk(c) for c in text)
    latin = sum(("a" <= c.lower() <= "z") for c in text)
    return cjk / (cjk + latin) if cjk + latin else 0.0


def n_chars(text: str) -> int:
    """Characters that are not whitespace (how "不超过30个字" is counted)."""
    return sum(not c.isspace() for c in text)


_MARKED_NUMBER = r"[:：]?\s*(?:是|为|=)?\s*\**\s*(-?[\d,]*\.?\d+)"


def final_answer_number(text: str, marker: str = "答案") -> str | None:
    """The number right after the LAST `答案：` (or `marker`), normalised; None if absent."""
    norm = unicodedata.normalize("NFKC", text)
    found = re.findall(re.escape(marker) + _MARKED_NUMBER, norm)
    return normalize_number(found[-1]) if found else None


def echoed_span(answer: str, prompt: str, n: int) -> str | None:
    """The first run of `n` characters of `answer` (whitespace removed) that also occurs in
    `prompt`, or None."""
    a = re.sub(r"\s+", "", unicodedata.normalize("NFKC", answer))
    p = re.sub(r"\s+", "", unicodedata.normalize("NFKC", prompt))
    for i in range(0, max(0, len(a) - n + 1)):
        if a[i:i + n] in p:
            return a[i:i + n]
    return None


def _has(text: str, value: Any, ignore_case: bool) -> bool:
    alts = value if isinstance(value, list) else [value]
    for a in alts:
        a = str(a)
        if (a.lower() in text.lower()) if ignore_case else (a in text):
            return True
    return False


# ------------------------------------------------------------------------------ checks


@dataclass
class CheckResult:
    type: str
    kind: str
    passed: bool
    found: Any = None  # what was measured or extracted (None = nothing found)
    extracts: bool = False
    note: str = ""


def run_check(text: str, check: dict, prompt: str = "") -> CheckResult:
    """Apply one check to the answer text (reasoning blocks already stripped); `prompt` is
    what the model was asked (for no_echo)."""
    t = check["type"]
    kind, _, extracts = CHECK_TYPES[t]
    kind = check.get("kind", kind)
    ic = check.get("ignore_case", True)
    norm = unicodedata.normalize("NFKC", text)
    found: Any = None
    if t == "contains_any":
        hits = [v for v in check["values"] if _has(norm, v, ic)]
        passed, found = bool(hits), hits
    elif t == "contains_all":
        misses = [v for v in check["values"] if not _has(norm, v, ic)]
        passed, found = not misses, {"missing": misses}
    elif t == "min_count":
        hits = [v for v in check["values"] if _has(norm, v, ic)]
        passed, found = len(hits) >= int(check["n"]), hits
    elif t == "forbidden":
        hits = [v for v in check["values"] if _has(norm, v, ic)]
        passed, found = not hits, hits
    elif t in ("regex", "regex_count"):
        flags = re.M | (re.I if ic else 0)
        matches = re.findall(check["pattern"], norm, flags)
        found = len(matches)
        if t == "regex":
            passed = found > 0
        else:
            lo = int(check.get("min", 0 if "max" in check else 1))
            passed = found >= lo and (
                "max" not in check or found <= int(check["max"]))
    elif t == "max_chars":
        found = n_chars(text.strip())
        passed = found <= int(check["n"])
    elif t == "min_chars":
        found = n_chars(text.strip())
        passed = found >= int(check["n"])
    elif t == "cjk_share_min":
        found = round(cjk_share(text), 4)
        passed = found >= float(check["value"])
    elif t == "cjk_share_max":
        found = round(cjk_share(text), 4)
        passed = found <= float(check["value"])
    elif t == "final_answer":
        found = final_answer_number(text, check.get("marker", "答案"))
        passed = found is not None and numbers_equal(found, check["value"])
    elif t == "json_object":
        obj, _err = extract_json(text)
        if isinstance(obj, dict):
            found = sorted(obj)
            passed = all(k in obj for k in check.get("required", []))
        else:
            found, passed = None, False
    elif t == "no_echo":
        found = echoed_span(text, prompt, int(check["n"]))
        passed = found is None
    else:  # pragma: no cover - validate_check refuses it first
        raise StudyError(f"unknown check type {t!r}")
    return CheckResult(t, kind, bool(passed), found, extracts, check.get("note", ""))


def evaluate(text: str | None, checks: list[dict],
             prompt: str = "") -> tuple[str, float, list[dict]]:
    """(verdict, share of checks passed, per-check results) for one answer to `prompt`."""
    answer = strip_reasoning(text or "").strip()
    if not answer:
        return "format_failure", 0.0, []
    results = [run_check(answer, c, prompt) for c in checks]
    share = sum(r.passed for r in results) / len(results) if results else 1.0
    if all(r.passed for r in results):
        verdict = "correct"
    elif any(r.extracts and r.found is None for r in results):
        verdict = "format_failure"
    else:
        verdict = "wrong"
    return verdict, share, [asdict(r) for r in results]
