"""The articles' command lines: the file quotes the articles, this machine changes only the model
and the port, corrections apply in order, and a refused start yields the line that says why."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from slmstudy import commands as K
from slmstudy.paths import REPO_ROOT

SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_every_command_quotes_its_article_and_argv_is_the_quote():
    cmds = K.load_commands()
    assert {c.article for c in cmds} >= {"000", "002", "004"}
    for c in cmds:
        path = next(SEEDS_DIR.glob(f"{c.article}_*.txt"), None)
        if path is None:
            pytest.skip("the seed articles are not beside the checkout")
        assert flat(c.quote) in flat(path.read_text(encoding="utf-8")), c.id
        # every argument after `python -m <module>` is printed in the quote (for a compose file the
        # module is the image's entrypoint, which the article does not print)
        args = c.argv[3:] if c.argv[:2] == ["python", "-m"] else c.argv
        assert all(flat(a) in flat(c.quote) for a in args), c.id


def test_only_the_model_and_the_port_are_substituted(tmp_path):
    c = next(c for c in K.load_commands() if c.id == "a004-3.2-vllm-api-server")
    argv = K.resolve(c, c.argv, tmp_path, 12345)
    assert argv[:5] == [sys.executable, "-m", "slmstudy.backends.vllm_cli", "--module",
                        "vllm.entrypoints.openai.api_server"]
    ran = argv[5:]
    assert ran[:len(c.argv) - 3] != c.argv[3:]  # model and port differ ...
    assert [a for a in ran if a not in (str(tmp_path), "12345")][:len(c.argv) - 5] == \
        [a for a in c.argv[3:] if a not in ("Qwen/Qwen2.5-7B-Instruct", "8000")]  # ... nothing else
    assert ran[-3:] == ["--load-format", "dummy", "--skip-tokenizer-init"]


def test_corrections_apply_in_order_and_remove_whole_arguments():
    c = next(c for c in K.load_commands() if c.id == "a004-3.2-vllm-api-server")
    once = K.apply_fixes(c.argv, c.fixes[:1])
    assert "131072" not in once and "32768" in once and "awq" in once
    both = K.apply_fixes(c.argv, c.fixes)
    assert "--quantization" not in both and "awq" not in both and both[-2:] == ["--dtype", "half"]
    compose = next(c for c in K.load_commands() if c.id == "a002-3.3-compose-vllm")
    fixed = K.apply_fixes(compose.argv, compose.fixes[:2])
    assert "--enable-auto-tool-choice" in fixed and "--tool-call-parser=hermes" in fixed


def test_the_error_line_is_the_one_that_says_why():
    pydantic_log = """Traceback (most recent call last):
  File "x.py", line 1, in <module>
pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig
  Value error, User-specified max_model_len (131072) is greater than the derived max_model_len
    For further information visit https://errors.pydantic.dev/2.14/v/value_error
"""
    assert K.error_line(pydantic_log).startswith("Value error, User-specified max_model_len (131072)")
    argparse_log = "usage: api_server.py [-h]\napi_server.py: error: unrecognized arguments: --enable-auto-tool-call\n"
    assert K.error_line(argparse_log) == "api_server.py: error: unrecognized arguments: --enable-auto-tool-call"


def test_a_command_that_needs_a_docker_engine_is_not_run_without_one(tmp_path, monkeypatch):
    monkeypatch.setattr(K, "docker_engine_available", lambda: False)
    c = next(c for c in K.load_commands() if c.needs == "docker-engine")
    rec = K.run_command(c, tmp_path, model_dir=None)
    assert rec["outcome"] == K.NOT_RUN and "Docker engine" in rec["reason"] and rec["attempts"] == []


def test_a_refused_start_is_recorded_with_its_exit_and_log(tmp_path):
    # a real process that fails the way a refused server does: prints an error and exits 2
    rec = K.run_once([sys.executable, "-c", "import sys; print('x: error: unrecognized arguments: --bad'); "
                      "sys.exit(2)"], port=1, log_path=tmp_path / "l.log", timeout_s=60)
    assert rec["outcome"] == K.REFUSED and rec["exit_code"] == 2
    assert rec["error"] == "x: error: unrecognized arguments: --bad" and (tmp_path / "l.log").is_file()
    hung = K.run_once([sys.executable, "-c", "import time; time.sleep(60)"], port=1,
                      log_path=tmp_path / "h.log", timeout_s=2)
    assert hung["outcome"] == K.TIMED_OUT


def test_a_listing_is_its_quote_with_line_breaks_restored():
    """The code run is the article's text, whitespace aside, and the only literal swapped is the
    model path."""
    listings = [c for c in K.load_commands() if c.code]
    assert {c.id for c in listings} >= {"a001-4.1-llama-cpp-python", "a001-4.2-onnxruntime-genai"}
    for c in listings:
        assert flat(c.code) == flat(c.quote), c.id
        assert list(c.substitute.values()) == ["model"] and next(iter(c.substitute)) in c.code
        assert K.listing_code(c, [], Path("/m")).replace("/m", next(iter(c.substitute))) == c.code


def test_a_listing_needs_its_artifact_form():
    with pytest.raises(Exception, match="a listing needs artifact"):
        K.ArticleCommand.model_validate({"id": "x", "article": "001", "section": "1", "quote": "q",
                                         "code": "print(1)", "claim": "c", "artifact": {"model": "m", "form": "pt"}})
    with pytest.raises(Exception, match="either argv .* or code"):
        K.ArticleCommand.model_validate({"id": "x", "article": "001", "section": "1", "quote": "q",
                                         "argv": ["a"], "code": "print(1)", "claim": "c"})


def test_a_failing_listing_keeps_its_error_and_what_it_printed(tmp_path):
    ok = K.run_listing("print('spring')\n", tmp_path / "ok.py", timeout_s=60)
    assert ok["outcome"] == K.RUNS and ok["printed"] == "spring\n" and ok["exit_code"] == 0
    bad = K.run_listing("import sys\nprint('half')\nsys.stdout.flush()\nraise TypeError('no such signature')\n",
                        tmp_path / "bad.py", timeout_s=60)
    assert bad["outcome"] == K.FAILS and bad["error"] == "TypeError: no such signature"
    assert bad["printed"] == "half\n" and Path(bad["log"]).is_file()
    hung = K.run_listing("import time\ntime.sleep(60)\n", tmp_path / "hung.py", timeout_s=2)
    assert hung["outcome"] == K.TIMED_OUT


def test_the_onnxruntime_genai_listing_runs_after_its_corrections(tmp_path, arts):
    """Article 001 §4.2 on the installed onnxruntime-genai: each correction removes the error the
    previous run printed, and the corrected code generates."""
    c = next(c for c in K.load_commands() if c.id == "a001-4.2-onnxruntime-genai")
    rec = K.run_command(c, tmp_path, model_dir=arts.onnx, fixes=True, timeout_s=120)
    outcomes = [a["outcome"] for a in rec["attempts"]]
    assert outcomes == [K.FAILS] * len(c.fixes) + [K.RUNS], [a["error"] for a in rec["attempts"]]
    assert "compute_logits" in rec["attempts"][1]["error"] and "get_sequence" in rec["attempts"][2]["error"]
    assert rec["attempts"][-1]["printed"].strip()
