"""The study's Gradio chat app (article 003 §4.1's `python app.py`, the study's own).

Runs under the Gradio environment (`.venv-gradio/bin/python gradio_app.py --port P --engine-url U
--app-log L`); it imports nothing from slmstudy, and the study's environment never imports it
(`slmstudy.gradio_chat.GradioApp` starts it). The model is not loaded here: each chat turn is
streamed from the study's engine server (`slmstudy.gradio_chat.engine_server`, in .venv), which
loads it through the study's backends. The chat is a `gr.ChatInterface` whose function yields the
answer so far after every token (Gradio's streaming); its API name is `/chat`.

Offline: analytics off, no share link, no server-side rendering (no Node process), system fonts
instead of the default theme's web fonts. Each turn appends one line to `--app-log`: when the
handler started, when the engine's first token reached it, and the engine's own numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(engine_url: str, max_tokens: int, app_log: str | None, title: str):
    import gradio as gr
    import httpx

    def chat(message, history):
        msgs = [{"role": m["role"], "content": m["content"]} for m in history
                if isinstance(m.get("content"), str)]
        msgs.append({"role": "user", "content": message})
        t_start = time.perf_counter_ns()
        t_first = None
        text, last = "", {}
        with httpx.stream("POST", f"{engine_url}/generate", timeout=600,
                          json={"messages": msgs, "max_tokens": max_tokens}) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line:
                    continue
                obj = json.loads(line)
                if "error" in obj:
                    raise gr.Error(f"engine: {obj['error']}")
                if obj.get("done"):
                    last = obj
                    continue
                if t_first is None:
                    t_first = time.perf_counter_ns()
                if obj["text"]:
                    text += obj["text"]
                    yield text
        if app_log:
            with open(app_log, "a", encoding="utf-8") as f:
                f.write(json.dumps({
                    "message": message, "history_turns": len(history), "t_start_ns": t_start,
                    "t_first_engine_token_ns": t_first, "t_end_ns": time.perf_counter_ns(),
                    "answer": text, **{k: last.get(k) for k in (
                        "n", "engine_ttft_ms", "render_ms", "prompt_tokens", "prompt_digest",
                        "n_tokens", "finish_reason")}}, ensure_ascii=False) + "\n")
        if not text:
            yield ""

    sys_fonts = ["ui-sans-serif", "system-ui", "sans-serif"]
    theme = gr.themes.Default(font=sys_fonts, font_mono=["ui-monospace", "monospace"])
    demo = gr.ChatInterface(chat, title=title, api_name="chat")
    return demo, theme


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the study's Gradio chat app")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--engine-url", required=True)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--app-log")
    ap.add_argument("--title", default="slmstudy chat")
    a = ap.parse_args(argv)
    import gradio as gr

    demo, theme = build(a.engine_url.rstrip("/"), a.max_tokens, a.app_log, a.title)
    print(f"gradio {gr.__version__} on 127.0.0.1:{a.port} → {a.engine_url}", flush=True)
    demo.queue().launch(server_name="127.0.0.1", server_port=a.port, share=False,
                        ssr_mode=False, show_error=True, theme=theme, quiet=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
