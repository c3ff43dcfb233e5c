"""The measurement notebook 01 runs for article 003's stack, its tables and claims rows."""

from __future__ import annotations

import statistics

from ..webui.watch import alive
from .drive import drive
from .server import GRADIO_VERSION
from .stack import GradioStack, engine_chat

DEFAULT_QUESTIONS = {"zh": "用一句话介绍北京。", "en": "Introduce Beijing in one sentence."}
WARMUP_QUESTION = "Say OK."
PATHS = ("engine", "engine-http", "gradio-client", "browser")


def _pair(turns: list[dict], engine_recs: list[dict], path: str, langs: list[str],
          reps: list[int]) -> list[dict]:
    if len(engine_recs) != len(turns):
        raise RuntimeError(f"{path}: {len(turns)} chats but the engine served {len(engine_recs)} "
                           "requests meanwhile; each chat must reach the engine exactly once")
    out = []
    for t, e, lang, rep in zip(turns, engine_recs, langs, reps):
        out.append({"path": path, "lang": lang, "rep": rep, "warmup": rep < 0,
                    "question": t["question"], "answer": t["answer"],
                    "first_token_ms": t["first_token_ms"], "first_paint_ms": t.get("first_paint_ms"),
                    "done_ms": t.get("done_ms", t.get("done_ms_driver")),
                    "screenshot": t.get("screenshot"),
                    "engine_ttft_ms": e["engine_ttft_ms"], "render_ms": e["render_ms"],
                    "prompt_tokens": e["prompt_tokens"], "prompt_digest": e["prompt_digest"],
                    "engine_text": e["text"], "engine_n_tokens": e["n_tokens"]})
    return out


def measure_gradio(model_path, tokenizer_dir, *, engine: str = "transformers",
                   options: dict | None = None, model_name: str, log_dir, screenshot_dir,
                   questions: dict[str, str] | None = None, repetitions: int = 3,
                   max_tokens: int = 32) -> dict:
    """Bring up the engine server + the Gradio app, measure, tear down; plain records.

    The same questions go (1) straight to the engine server, (2) through `gradio_client` and (3)
    through the page in headless Chromium, each after one discarded warm-up round, `repetitions`
    times each. Every chat is paired with the engine's own record of it (its clock: call into the
    backend → first token, and the prompt ids), so the front end's share is measured per request.
    Also: start-up, peak RSS per process tree, sockets outside loopback, PIDs left after teardown.
    """
    if repetitions < 1:
        raise ValueError(f"repetitions must be ≥ 1, got {repetitions}")
    questions = questions or DEFAULT_QUESTIONS
    langs = list(questions)
    out: dict = {"records": [], "questions": questions, "max_tokens": max_tokens,
                 "repetitions": repetitions, "engine": engine}
    stack = GradioStack(model_path, tokenizer_dir, engine=engine, options=options,
                        model_name=model_name, log_dir=log_dir, max_tokens=max_tokens)
    with stack:
        eng, app = stack.engine, stack.app
        out["startup"] = {"engine": engine, "engine_ready_s": stack.engine_ready_s,
                          "app_ready_s": stack.app_ready_s, "stack_s": stack.startup_s,
                          "gradio": GRADIO_VERSION}
        # (1) straight to the engine server; round -1 is the warm-up
        n0 = len(eng.requests())
        turns, tl, tr = [], [], []
        for rep in range(-1, repetitions):
            for lang, q in questions.items():
                r = engine_chat(eng, q, max_tokens=max_tokens)
                turns.append({"question": q, **r})
                tl.append(lang)
                tr.append(rep)
        recs = eng.requests()
        out["records"] += _pair(turns, recs[n0:], "engine-http", tl, tr)
        # (2) gradio_client, (3) the page: one warm-up round each, then the repetitions
        sched = [(lang, rep) for rep in range(-1, repetitions) for lang in langs]
        for mode, path in (("client", "gradio-client"), ("browser", "browser")):
            n0 = len(eng.requests())
            res = drive(app.base_url, [questions[lang] for lang, _ in sched], mode=mode,
                        watch=stack.watch, screenshot_dir=screenshot_dir if mode == "browser" else None,
                        screenshot_prefix="01_gradio")
            out[f"{path}_run"] = {k: v for k, v in res.items() if k not in ("turns", "requests")}
            out["records"] += _pair(res["turns"], eng.requests()[n0:], path,
                                    [s[0] for s in sched], [s[1] for s in sched])
        out["app_turns"] = app.turns()
        stack.watch.sample()
        out["memory"] = stack.watch.memory_table()
        pids = stack.all_pids()
    out["network"] = {"outside_loopback": stack.watch.outside, "exposed": stack.watch.exposed,
                      "loopback_connections_seen": stack.watch.loopback_seen}
    out["pids_left"] = alive(pids)
    out["n_pids"] = len(pids)
    return out


def timings_table(G: dict) -> list[dict]:
    """Time to the first token per language and path (medians, warm-up excluded).

    engine: the engine's own clock (call into the backend → first token) over every measured
    request; engine-http: client → first token line from the engine server; gradio-client:
    `submit` → first non-empty update; browser: Enter → first answer text in the page.
    `over_engine_ms` = median over requests of (that path's time − the engine's own TTFT of the
    same request): what HTTP, Gradio and the page add, robust to the engine being slowed by load.
    """
    rows = []
    recs = [r for r in G["records"] if not r["warmup"]]
    for lang in G["questions"]:
        sel_all = [r for r in recs if r["lang"] == lang]
        eng = [r["engine_ttft_ms"] for r in sel_all]
        if eng:
            rows.append({"lang": lang, "path": "engine", "n": len(eng),
                         "first_token_ms": statistics.median(eng), "min_ms": min(eng),
                         "max_ms": max(eng), "engine_ttft_ms": statistics.median(eng),
                         "over_engine_ms": 0.0,
                         "prompt_tokens": ",".join(sorted({str(r["prompt_tokens"]) for r in sel_all}))})
        for path in PATHS[1:]:
            sel = [r for r in sel_all if r["path"] == path]
            if not sel:
                continue
            v = [r["first_token_ms"] for r in sel]
            rows.append({
                "lang": lang, "path": path, "n": len(v), "first_token_ms": statistics.median(v),
                "min_ms": min(v), "max_ms": max(v),
                "engine_ttft_ms": statistics.median(r["engine_ttft_ms"] for r in sel),
                "over_engine_ms": statistics.median(r["first_token_ms"] - r["engine_ttft_ms"] for r in sel),
                "prompt_tokens": ",".join(sorted({str(r["prompt_tokens"]) for r in sel}))})
    return rows


def overhead_beside_webui(G: dict | None, W: dict | None) -> list[dict]:
    """One table: each front end's first-token time and what it adds beyond the engine's own
    first-token work, per language (Gradio: over the engine's own TTFT of the same request;
    Open WebUI: over llama.cpp's prompt evaluation of the same request, from its log)."""
    rows = []
    if G:
        for r in timings_table(G):
            rows.append({"stack": f"Gradio {G['startup']['gradio']} + {G['engine']}", "path": r["path"],
                         "lang": r["lang"], "n": r["n"], "first_token_ms": r["first_token_ms"],
                         "over_engine_ms": r["over_engine_ms"]})
    if W:
        from ..webui.measure import timings_table as webui_table

        for r in webui_table(W):
            rows.append({"stack": f"Open WebUI {W['startup']['open_webui']} + {W['startup']['engine']}",
                         "path": r["path"], "lang": r["lang"], "n": r["n"],
                         "first_token_ms": r["first_token_ms"], "over_engine_ms": r["outside_engine_ms"]})
    return rows


def claims_rows(G: dict, pins: dict | None = None) -> list[dict]:
    """Article 003's statements about this deployment, next to what this run found."""
    t = {(r["lang"], r["path"]): r for r in timings_table(G)}
    s = G["startup"]

    def over(path):
        return ", ".join(f"{lang} {t[(lang, path)]['over_engine_ms']:.0f} ms" for lang in G["questions"]
                         if (lang, path) in t)

    rows = [
        {"article": "003 §4.1", "claim": "`python app.py` (a Gradio app over AutoModelForCausalLM) serves the model",
         "this run": f"the study's Gradio {s['gradio']} app over {G['engine']} served "
                     f"{len(G['records'])} chats (engine ready {s['engine_ready_s']:.1f} s, app ready "
                     f"{s['app_ready_s']:.1f} s); every chat reached the engine once",
         "verdict": "measured (the article's app.py is not published; the study's own app)"},
        {"article": "003 §3.5", "claim": "首 token 延迟 140 ms (Qwen2.5-7B) / 98 ms (Phi-3-mini), RTX 4090 D",
         "this run": f"Gradio adds over the engine's own TTFT: gradio_client {over('gradio-client')}; "
                     f"browser {over('browser')}",
         "verdict": "not testable here (other model and hardware); the front end's share is measured"},
    ]
    if pins:
        res = pins["resolve"]
        native = {p["transformers"]: p.get("native_phi3") for p in pins["phi3_native"]}
        rows += [
            {"article": "003 §4.1", "claim": "torch 2.9.1, transformers 4.57.3, gradio 6.2.0, accelerate 1.12.0",
             "this run": f"{'resolve' if res['resolves'] else 'do not resolve'} together on PyPI "
                         f"({pins['checked_on']}, Python {pins['python']}: `{res['command']}`)",
             "verdict": "consistent" if res["resolves"] else "inconsistent"},
            {"article": "003 §4.2", "claim": "Phi-3 需设置 trust_remote_code=True 才能正确加载",
             "this run": "transformers ships Phi-3 natively from 4.41.0: "
                         + ", ".join(f"{v} {'yes' if n else 'no'}" for v, n in native.items())
                         + f" ({pins['checked_on']})",
             "verdict": "inconsistent" if native.get("4.57.3") else "consistent"},
        ]
    return rows
