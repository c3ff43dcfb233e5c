"""The measurement notebook 01 runs, its tables, figure and claims rows."""

from __future__ import annotations

from ..backends.base import Generation
from .articles import env_var_read_by_open_webui, models_via_ollama_setting
from .browser import browser_chat
from .enginelog import LLAMA_DONE, LogCursor, llamacpp_requests
from .server import OPEN_WEBUI_VERSION, engine_stream
from .stack import WebUIStack
from .watch import alive

DEFAULT_QUESTIONS = {"zh": "用一句话介绍北京。", "en": "Introduce Beijing in one sentence."}


WARMUP_QUESTION = "Say OK."


def measure_stack(gguf_path, *, model_name: str, log_dir, screenshot_dir,
                  questions: dict[str, str] | None = None, api_repetitions: int = 3,
                  max_tokens: int = 48) -> dict:
    """Bring up llama_cpp.server + Open WebUI, measure, tear down; everything as plain records.

    - start-up: engine ready, UI ready, whole stack;
    - the admin account (API sign-up) and the model list Open WebUI shows;
    - TTFT of the same chat sent to the engine and through Open WebUI's API (one discarded
      warm-up round, then `api_repetitions`; requests alternate so no two consecutive prompts
      are equal and llama.cpp's prefix reuse is the same for both paths), each paired with the
      engine's own log lines (its request line, prompt tokens, prompt-eval ms);
    - a browser chat per question (Enter → first visible token) with screenshots, after one
      discarded warm-up question;
    - peak RSS per process tree, sockets outside loopback, PIDs left running after teardown;
    - the articles' configuration: which of their environment variables Open WebUI reads, and
      what it lists when the engine is given to its Ollama connection.
    """
    questions = questions or DEFAULT_QUESTIONS
    out: dict = {"api": [], "browser": [], "questions": questions, "max_tokens": max_tokens}
    stack = WebUIStack(gguf_path, model_name=model_name, log_dir=log_dir)
    with stack:
        ui, eng = stack.ui, stack.engine
        out["startup"] = {"engine_ready_s": stack.engine_ready_s, "ui_ready_s": stack.ui_ready_s,
                          "stack_s": stack.startup_s, "engine": eng.name,
                          "open_webui": OPEN_WEBUI_VERSION}
        token = ui.signup_admin()
        out["admin_role"] = "admin"
        out["models"] = ui.models(token)
        ui.set_chat_defaults(token, temperature=0, max_tokens=max_tokens)
        cursor = LogCursor(eng.log_path)
        for rep in range(-1, api_repetitions):
            for path in ("engine", "open-webui"):
                for lang, q in questions.items():
                    if path == "engine":
                        g = engine_stream(eng, q, max_tokens=max_tokens)
                    else:
                        g = ui.chat_stream(token, q, max_tokens=max_tokens)
                    log = llamacpp_requests(cursor.read(wait_for=LLAMA_DONE))
                    out["api"].append(_api_record(g, path, lang, rep, log))
        # the first chat after logging in pays one-off page work: a discarded warm-up question
        texts = [WARMUP_QUESTION, *questions.values()]
        turns = browser_chat(ui, texts, screenshot_dir=screenshot_dir, screenshot_prefix="01_webui",
                             watch=stack.watch)
        log = llamacpp_requests(cursor.read(wait_for=LLAMA_DONE, count=len(texts)))
        for i, (lang, t) in enumerate(zip(questions, turns["turns"][1:]), start=1):
            out["browser"].append({
                "path": "browser", "lang": lang, "question": t["question"], "answer": t["answer"],
                "first_token_ms": t["first_token_ms"], "first_paint_ms": t["first_paint_ms"],
                "done_ms": t["done_ms_driver"], "screenshot": t["screenshot"],
                **_engine_side(log, i)})
        out["browser_run"] = {k: turns[k] for k in ("browser_version", "login_s", "hosts",
                                                     "failed_requests", "wall_s")}
        out["engine_posts_browser"] = len(log["posts"])
        stack.watch.sample()
        out["memory"] = stack.watch.memory_table()
        out["articles"] = {
            "models_via_ollama_setting": models_via_ollama_setting(ui, token, f"{eng.base_url}/v1"),
            "env_read": {v: env_var_read_by_open_webui(v, ui.venv) for v in
                         ("OPENAI_API_BASE_URL", "OPENAI_API_BASE", "OLLAMA_API_BASE_URL",
                          "OPEN_WEBUI_MODEL_NAME")}}
        pids = stack.all_pids()
    out["network"] = {"outside_loopback": stack.watch.outside, "exposed": stack.watch.exposed,
                      "loopback_connections_seen": stack.watch.loopback_seen}
    out["pids_left"] = alive(pids)
    out["n_pids"] = len(pids)
    return out


def _engine_side(log: dict, i: int) -> dict:
    r = log["requests"][i] if i < len(log["requests"]) else {}
    return {"engine_saw_request": i < len(log["posts"]),
            "engine_prompt_tokens": r.get("prompt_tokens"),
            "engine_prompt_eval_ms": r.get("prompt_eval_ms"),
            "engine_decode_runs": r.get("decode_runs")}


def _api_record(g: Generation, path: str, lang: str, rep: int, log: dict) -> dict:
    return {"path": path, "lang": lang, "rep": rep, "warmup": rep < 0,
            "ttft_ms": g.ttft_s * 1000, "e2e_ms": g.e2e_s * 1000,
            "n_chunks": len(g.token_times_ns), "finish_reason": g.finish_reason, "text": g.text,
            **_engine_side(log, 0)}


def compose_screenshots(paths: list[str], titles: list[str]):
    """One figure with the browser screenshots stacked (for plotting.show)."""
    import matplotlib.pyplot as plt

    imgs = [plt.imread(p) for p in paths]
    h, w = imgs[0].shape[:2]
    fig, axes = plt.subplots(len(imgs), 1, figsize=(9, 9 * h / w * len(imgs) + 0.4 * len(imgs)))
    for ax, img, t in zip(list(getattr(axes, "flat", [axes])), imgs, titles):
        ax.imshow(img)
        ax.set_title(t, fontsize=10, loc="left")
        ax.axis("off")
    fig.tight_layout()
    return fig


def timings_table(W: dict) -> list[dict]:
    """Time to the first token per path and language (medians, warm-up excluded).

    engine / open-webui: client → first streamed chunk; browser: Enter → first text in the page.
    `outside_engine_ms` = that time minus the engine's own prompt evaluation for the same request
    (from its log), paired per request: what HTTP, Open WebUI and the page add, robust to the
    engine being slowed by other load. `added_over_engine_ms` = a path's `outside_engine_ms`
    minus the direct engine path's.
    """
    import statistics

    def first(r):
        return r["ttft_ms"] if "ttft_ms" in r else r["first_token_ms"]

    rows = []
    recs = [r for r in W["api"] if not r["warmup"]] + W["browser"]
    for lang in W["questions"]:
        base = None
        for path in ("engine", "open-webui", "browser"):
            sel = [r for r in recs if r["path"] == path and r["lang"] == lang]
            if not sel:
                continue
            v = [first(r) for r in sel]
            pe = [r["engine_prompt_eval_ms"] for r in sel if r.get("engine_prompt_eval_ms") is not None]
            outside = [first(r) - r["engine_prompt_eval_ms"] for r in sel
                       if r.get("engine_prompt_eval_ms") is not None]
            out_med = statistics.median(outside) if outside else None
            if path == "engine":
                base = out_med
            rows.append({
                "lang": lang, "path": path, "n": len(v), "first_token_ms": statistics.median(v),
                "min_ms": min(v), "max_ms": max(v),
                "engine_prompt_eval_ms": statistics.median(pe) if pe else None,
                "outside_engine_ms": out_med,
                "added_over_engine_ms": (None if path == "engine" or base is None or out_med is None
                                         else out_med - base),
                "prompt_tokens": ",".join(sorted({str(r.get("engine_prompt_tokens")) for r in sel}))})
    return rows


def claims_rows(W: dict) -> list[dict]:
    """The articles' statements about this stack, next to what this run found."""
    env = W["articles"]["env_read"]
    via_ollama = W["articles"]["models_via_ollama_setting"]
    t = {(r["lang"], r["path"]): r for r in timings_table(W)}
    br = [r for (lang, p), r in t.items() if p == "browser"]
    over = [r["added_over_engine_ms"] for r in br if r["added_over_engine_ms"] is not None]
    s = W["startup"]
    ver = s["open_webui"]

    def read(v):
        return ", ".join(env[v]) if env[v] else "nowhere"

    return [
        {"article": "000 §2.3", "claim": "`export OLLAMA_API_BASE_URL=http://localhost:8000/v1`, "
         "then `open-webui serve` talks to vLLM's OpenAI API",
         "this run": f"that URL on Open WebUI's Ollama connection lists {len(via_ollama)} models "
                     f"({', '.join(via_ollama) or 'none'}); on OPENAI_API_BASE_URL it lists "
                     f"{', '.join(W['models'])}",
         "verdict": "consistent" if W["models"][0] in via_ollama else "inconsistent"},
        {"article": "004 §3.3", "claim": "`docker run -e OPENAI_API_BASE=http://<ip>:8000/v1 …`",
         "this run": f"Open WebUI {ver} reads OPENAI_API_BASE in: {read('OPENAI_API_BASE')}; "
                     f"it reads OPENAI_API_BASE_URL in: {read('OPENAI_API_BASE_URL')}",
         "verdict": "consistent" if env["OPENAI_API_BASE"] else
                    "inconsistent (variable ignored; default https://api.openai.com/v1)"},
        {"article": "002 §3.4", "claim": "`-e OPEN_WEBUI_MODEL_NAME=\"Qwen2.5-7B-Instruct\"`",
         "this run": f"read in: {read('OPEN_WEBUI_MODEL_NAME')}",
         "verdict": "consistent" if env["OPEN_WEBUI_MODEL_NAME"] else "inconsistent (variable ignored)"},
        {"article": "000 §2.3, 004 §3.3", "claim": "log in with the demo account kakajiang@kakajiang.com",
         "this run": f"a fresh install has no accounts; the first sign-up became {W['admin_role']}",
         "verdict": "not testable here (accounts are per install)"},
        {"article": "004 §3.4", "claim": "首次响应时间 (prompt=50 tokens) ~1.2 s; 112 tokens/s "
         "(RTX 3060, Qwen2.5-7B, AWQ)",
         "this run": "browser Enter → first token " + ", ".join(
             f"{r['lang']} {r['first_token_ms']:.0f} ms" for r in br) + "; Open WebUI + page add "
             + ", ".join(f"{o:.0f} ms" for o in over) + " over the engine's TTFT",
         "verdict": "not testable here (other model and hardware); the UI's share is measured"},
        {"article": "002 §3.5", "claim": "万字长文摘要，响应时间 < 15 s",
         "this run": "—", "verdict": "not testable here (needs a 128K-context 7B model)"},
        {"article": "000 §2", "claim": "观察启动效率 (start-up efficiency observed; no number given)",
         "this run": f"engine ready {s['engine_ready_s']:.1f} s, Open WebUI ready "
                     f"{s['ui_ready_s']:.1f} s, stack {s['stack_s']:.1f} s",
         "verdict": "measured (no number to compare)"},
    ]
