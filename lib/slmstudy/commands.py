"""The articles' deployment command lines and code listings, run as written (data/commands.yaml).

Each command runs with only what this machine must change (the model id becomes a local replica
folder of a registered architecture, the port a free one) and what a replica needs appended (random
weights, no tokenizer). It is *refused* when the process exits before serving (the error line is
kept), *serves* when its HTTP health check answers, *timed out* otherwise. When refused and the
entry lists fixes, the next correction is applied and the command runs again, so the record shows
every problem in turn and whether the corrected command serves. Logs are kept beside the records.

A code listing (an entry with `code`) is the article's Python, its line breaks restored (the
article's text lost them; a test holds the listing to the quote, whitespace aside), with only the
model path substituted by one of the study's own artifacts. It *runs* when it exits 0 and *fails*
otherwise (the error line is kept, with the start of what it printed); fixes replace parts of
the code, one at a time, while it fails.

A command whose program this machine lacks (docker without an engine) is recorded as not run,
with the reason. Records are appended as they complete and a rerun skips the ones done.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .backends.servers import free_port, python_module_argv
from .errors import StudyError
from .paths import PROJECT_DATA_DIR

COMMANDS_PATH = PROJECT_DATA_DIR / "commands.yaml"
SERVES, REFUSED, TIMED_OUT, NOT_RUN = "serves", "refused", "timed out", "not run"
RUNS, FAILS = "runs", "fails"  # a code listing: exit 0, or not
#: the forms of a registered model a listing's model path can stand for (artifacts.prepare)
LISTING_FORMS = ("gguf", "onnx")


class Fix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replace: dict[str, str] = Field(default_factory=dict)  # argument (or part of one, or of the code) -> corrected
    remove: list[str] = Field(default_factory=list)  # consecutive arguments to drop
    why: str


class ArticleCommand(BaseModel):
    """One command line an article prints, as data/commands.yaml records it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    article: str
    section: str
    quote: str
    argv: list[str] = Field(default_factory=list)
    code: str | None = None  # a code listing: the article's Python with its line breaks restored
    claim: str
    model: str | None = None  # registered architecture whose replica stands in for the article's model
    artifact: dict[str, str] | None = None  # a listing's model: {model: registry key, form: gguf | onnx}
    substitute: dict[str, str] = Field(default_factory=dict)  # literal -> "model" | "port"
    append: list[str] = Field(default_factory=list)  # "port" and "model" are substituted too
    fixes: list[Fix] = Field(default_factory=list)
    needs: str | None = None  # "docker-engine": a program this machine may not have
    why_not: str | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        if bool(self.argv) == bool(self.code):
            raise ValueError("give either argv (a command line) or code (a listing)")
        if self.code and (not self.artifact or set(self.artifact) != {"model", "form"}
                          or self.artifact["form"] not in LISTING_FORMS):
            raise ValueError(f"a listing needs artifact: {{model: <registry key>, form: {' | '.join(LISTING_FORMS)}}}")
        return self


def load_commands(path: str | Path = COMMANDS_PATH) -> list[ArticleCommand]:
    """The commands file, validated; errors name the file, the entry and the field."""
    from pydantic import ValidationError

    from .claims.model import _read_yaml_mapping, _validation_message

    raw = _read_yaml_mapping(Path(path), "commands")
    out = []
    for i, entry in enumerate(raw or []):
        try:
            out.append(ArticleCommand.model_validate(entry))
        except ValidationError as exc:
            raise StudyError(f"{path}: commands[{i}] ({(entry or {}).get('id')!r}): "
                             f"{_validation_message(exc)}") from None
    return out


def docker_engine_available() -> bool:
    """A docker CLI that reaches a running engine (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def apply_fixes(argv: list[str], fixes: list[Fix]) -> list[str]:
    """argv with each fix applied in order (a replace matches a whole argument or a substring)."""
    out = list(argv)
    for fix in fixes:
        for old, new in fix.replace.items():
            if old in out:
                out = [new if a == old else a for a in out]
            else:
                out = [a.replace(old, new) for a in out]
        if fix.remove:
            n = len(fix.remove)
            for i in range(len(out) - n + 1):
                if out[i:i + n] == fix.remove:
                    out = out[:i] + out[i + n:]
                    break
    return out


def resolve(cmd: ArticleCommand, argv: list[str], model_dir: Path | None, port: int) -> list[str]:
    """The argv this machine runs: substitutions made, the replica's arguments appended, `python
    -m <module>` as this environment runs it."""
    values = {"model": str(model_dir) if model_dir else "model", "port": str(port)}
    subst = {lit: values[what] for lit, what in cmd.substitute.items()}
    out = []
    for a in [*argv, *cmd.append]:
        if a in values and a in cmd.append:
            out.append(values[a])
            continue
        for lit, val in subst.items():
            a = a if lit not in a else (val if a == lit else a.replace(lit, val))
        out.append(a)
    if len(out) > 2 and out[0] == "python" and out[1] == "-m":
        return python_module_argv(out[2], out[3:])
    return out


ERROR_LINE = re.compile(r"error|invalid|unrecognized|not supported|cannot", re.IGNORECASE)


def error_line(log: str) -> str:
    """The line of a failed start that says why: the last error-looking line that is not a
    traceback frame or a documentation link."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("File ", "For further information", "raise ", "^")):
            continue
        if ERROR_LINE.search(ln):
            return _first_sentence(ln)
    return _first_sentence(lines[-1]) if lines else ""


def _first_sentence(line: str, limit: int = 400) -> str:
    """A long error line up to the end of its first sentence (vLLM's go on with advice)."""
    end = line.find(". ", 60)
    line = line[:end + 1] if end > 0 else line
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def run_once(argv: list[str], port: int, log_path: Path, timeout_s: float) -> dict[str, Any]:
    """Start the command; wait until it exits (refused), serves /health (serves) or times out.
    The process group is killed on every exit path."""
    from .backends.servers import _die_with_parent

    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, preexec_fn=_die_with_parent)  # its own session: killpg
        try:
            outcome = TIMED_OUT
            while time.perf_counter() - t0 < timeout_s:
                if proc.poll() is not None:
                    outcome = REFUSED
                    break
                if _healthy(port):
                    outcome = SERVES
                    break
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return {"outcome": outcome, "exit_code": proc.returncode if outcome == REFUSED else None,
            "seconds": time.perf_counter() - t0,
            "error": error_line(text) if outcome != SERVES else "", "log": str(log_path)}


def listing_code(cmd: ArticleCommand, fixes: list[Fix], model_path: Path | None) -> str:
    """The listing's code with `fixes` applied and the model path substituted."""
    code = apply_fixes([cmd.code or ""], fixes)[0]
    for lit, what in cmd.substitute.items():
        if what == "model":
            code = code.replace(lit, str(model_path) if model_path else lit)
    return code


def run_listing(code: str, path: Path, timeout_s: float) -> dict[str, Any]:
    """Write the listing to `path` and run it with this environment's Python, in its folder."""
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, path.name], cwd=path.parent, capture_output=True, text=True,
                              errors="replace", env=env, stdin=subprocess.DEVNULL, timeout=timeout_s)
        outcome, rc, out, err = (RUNS if proc.returncode == 0 else FAILS), proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        outcome, rc = TIMED_OUT, None
        out = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    log = path.with_suffix(".log")
    log.write_text(f"$ python {path.name}\n--- stdout\n{out}\n--- stderr\n{err}", encoding="utf-8")
    return {"outcome": outcome, "exit_code": rc, "seconds": time.perf_counter() - t0,
            "error": error_line(err) if outcome == FAILS else "", "printed": out[:400], "log": str(log)}


def _run_listing_chain(cmd: ArticleCommand, log_dir: Path, model_path: Path | None, fixes: bool,
                       timeout_s: float) -> list[dict[str, Any]]:
    attempts = []
    chain = [[]] + ([cmd.fixes[:i + 1] for i in range(len(cmd.fixes))] if fixes else [])
    for applied in chain:
        code = listing_code(cmd, applied, model_path)
        result = run_listing(code, log_dir / f"{cmd.id}-{len(applied)}.py", timeout_s)
        attempts.append({"fixes": [f.why for f in applied], "written": apply_fixes([cmd.code or ""], applied),
                         "ran": ["python", f"{cmd.id}-{len(applied)}.py"], **result})
        if result["outcome"] != FAILS:
            break
    return attempts


def run_command(cmd: ArticleCommand, log_dir: Path, *, model_dir: Path | None, fixes: bool = True,
                timeout_s: float = 300) -> dict[str, Any]:
    """One command as written, then (while refused, when `fixes`) with each correction in turn:
    a record with every attempt. For a listing, `model_dir` is the artifact its model path
    stands for."""
    attempts = []
    if cmd.needs == "docker-engine" and not docker_engine_available():
        return {"key": f"command/{cmd.id}", "id": cmd.id, "article": cmd.article, "section": cmd.section,
                "claim": cmd.claim, "quote": cmd.quote, "as_written": cmd.argv, "outcome": NOT_RUN,
                "reason": cmd.why_not or "a program this machine lacks", "attempts": []}
    if cmd.code:
        attempts = _run_listing_chain(cmd, log_dir, model_dir, fixes, timeout_s)
    chain = [] if cmd.code else [[]] + ([cmd.fixes[:i + 1] for i in range(len(cmd.fixes))] if fixes else [])
    for applied in chain:
        port = free_port()
        argv = resolve(cmd, apply_fixes(cmd.argv, applied), model_dir, port)
        result = run_once(argv, port, log_dir / f"{cmd.id}-{len(applied)}.log", timeout_s)
        attempts.append({"fixes": [f.why for f in applied],
                         "written": apply_fixes(cmd.argv, applied), "ran": argv, **result})
        if result["outcome"] != REFUSED:
            break
    return {"key": f"command/{cmd.id}", "id": cmd.id, "article": cmd.article, "section": cmd.section,
            "claim": cmd.claim, "quote": cmd.quote, "as_written": cmd.code or cmd.argv,
            "kind": "listing" if cmd.code else "command",
            "outcome": attempts[0]["outcome"], "reason": attempts[0]["error"],
            "fixed_outcome": attempts[-1]["outcome"] if len(attempts) > 1 else None,
            "attempts": attempts}


def run_all(results, ids: list[str] | None, *, fixes: bool, timeout_s: float = 300,
            progress: bool = True) -> list[dict]:
    """Run the selected commands (all when `ids` is None), appending each record to the section's
    results as it completes; commands already recorded are not run again."""
    from tqdm.auto import tqdm

    from .replicas import hf_config_dir

    cmds = load_commands()
    unknown = sorted(set(ids or ()) - {c.id for c in cmds})
    if unknown:
        raise StudyError(f"article_commands names unknown commands {unknown}; known: "
                         f"{', '.join(c.id for c in cmds)} (data/commands.yaml)")
    selected = [c for c in cmds if ids is None or c.id in ids]
    done = {r["key"]: r for r in results.records() if str(r.get("key", "")).startswith("command/")}
    out = []
    for c in tqdm(selected, desc="article commands", disable=not progress):
        key = f"command/{c.id}"
        if key not in done:
            model_dir = listing_model(c) if c.code else hf_config_dir(c.model) if c.model else None
            done[key] = run_command(c, results.dir / "logs" / "commands", model_dir=model_dir,
                                    fixes=fixes, timeout_s=timeout_s)
            results.append(done[key])
        out.append(done[key])
    return out


def listing_model(cmd: ArticleCommand) -> Path:
    """The study's own artifact a listing's model path stands for (derived once, cached)."""
    from .artifacts import prepare

    form = cmd.artifact["form"]
    arts = prepare(cmd.artifact["model"], formats=() if form == "gguf" else (form,), progress=False)
    return arts.gguf if form == "gguf" else arts.onnx


def outcome_rows(records: list[dict]) -> list[dict]:
    """The outcome table: per command, as written and after each fix."""
    rows = []
    for r in records:
        if not r["attempts"]:
            rows.append({"command": r["id"], "attempt": "as written", "outcome": r["outcome"],
                         "why": r["reason"], "seconds": None})
        for i, a in enumerate(r["attempts"]):
            rows.append({"command": r["id"], "attempt": "as written" if i == 0 else f"fix {i}: {a['fixes'][-1]}",
                         "outcome": a["outcome"], "why": a["error"], "seconds": round(a["seconds"], 1),
                         "printed": " ".join((a.get("printed") or "").split())[:80] or None})
    return rows
