"""Chat with the study's Gradio app through `gradio_client` or through headless Chromium.

Runs under the Gradio environment (`.venv-gradio/bin/python gradio_driver.py in.json out.json`),
where gradio_client and Playwright are installed; it imports nothing from slmstudy
(`slmstudy.gradio_chat.drive` starts it as a subprocess). cfg["mode"] is "client" or "browser".

client: one `gradio_client.Client` (its connection set-up is not timed), then per question a new
session (a new chat, as the page's reload is) and `submit(message, api_name="/chat")`;
`first_token_ms` = submit → the first non-empty update.

browser: Debian Chromium (`executable_path`; `playwright install` is never run), every host name
mapped to nothing except 127.0.0.1. Per question the page is loaded afresh (a new chat: the same
prompt as the API requests), the question typed, and the clock runs in the page
(`performance.now()`): a capturing keydown listener stamps Enter, a MutationObserver the first
moment the new bot message holds text, the next animation frame when that text was painted.
The answer is complete when Gradio's stop button has gone and the submit button is back.
"""

from __future__ import annotations

import json
import sys
import time
from urllib.parse import urlparse

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

BOT = '[data-testid="bot"]'
INPUT = 'textarea[data-testid="textbox"]'

ARM_JS = """(sel) => {
  const s = {enter: null, first: null, paint: null, firstText: null,
             n0: document.querySelectorAll(sel).length};
  window.__slm = s;
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && s.enter === null) s.enter = performance.now();
  }, {capture: true});
  const check = () => {
    if (s.first !== null || s.enter === null) return;
    const els = document.querySelectorAll(sel);
    if (els.length <= s.n0) return;
    const text = els[els.length - 1].innerText.trim();
    if (text.length > 0) {
      s.first = performance.now(); s.firstText = text;
      requestAnimationFrame(() => { s.paint = performance.now(); });
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""

# generating: Gradio shows a stop button in place of submit; done when it is gone again
DONE_JS = """() => !document.querySelector('button.stop-button, [data-testid="stop-button"]')
  && !!document.querySelector('button.submit-button, [data-testid="submit-button"]')"""


def run_client(cfg: dict, out: dict) -> None:
    from gradio_client import Client

    t0 = time.perf_counter()
    client = Client(cfg["url"], verbose=False, download_files=False)
    out["connect_s"] = time.perf_counter() - t0
    import gradio_client

    out["gradio_client_version"] = gradio_client.__version__
    out["turns"] = []
    for q in cfg["questions"]:
        client.reset_session()  # a new chat: a session keeps the ChatInterface's history
        t_submit = time.perf_counter_ns()
        job = client.submit(q, api_name="/chat")
        first = None
        n_updates = 0
        last = ""
        for update in job:
            n_updates += 1
            if first is None and isinstance(update, str) and update:
                first = time.perf_counter_ns()
            last = update
        t_done = time.perf_counter_ns()
        final = job.outputs()[-1] if job.outputs() else last
        out["turns"].append({"question": q, "answer": final, "n_updates": n_updates,
                             "first_token_ms": (first - t_submit) / 1e6 if first else None,
                             "done_ms": (t_done - t_submit) / 1e6})


def run_browser(cfg: dict, out: dict) -> None:
    from playwright.sync_api import sync_playwright

    base = cfg["url"].rstrip("/")
    timeout_ms = int(cfg.get("timeout_s", 300) * 1000)
    out.update({"turns": [], "requests": [], "failed_requests": [], "console_errors": []})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=cfg.get("chromium", "/usr/bin/chromium"),
                                     headless=True, args=CHROMIUM_ARGS)
        out["browser_version"] = browser.version
        ctx = browser.new_context(viewport={"width": cfg.get("width", 1000),
                                            "height": cfg.get("height", 560)},
                                  locale="en-US", service_workers="block")
        ctx.on("request", lambda r: out["requests"].append(r.url))
        ctx.on("requestfailed", lambda r: out["failed_requests"].append(
            {"url": r.url, "error": r.failure}))
        page = ctx.new_page()
        page.set_default_timeout(timeout_ms)
        page.on("console", lambda m: out["console_errors"].append(m.text[:300])
                if m.type == "error" else None)
        for i, q in enumerate(cfg["questions"]):
            t0 = time.perf_counter()
            page.goto(f"{base}/")
            page.wait_for_selector(INPUT)
            if i == 0:
                out["page_load_s"] = time.perf_counter() - t0
            page.evaluate(ARM_JS, BOT)
            page.click(INPUT)
            page.keyboard.type(q)
            t_enter = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_function("() => window.__slm.first !== null", polling=10)
            page.wait_for_function("() => window.__slm.paint !== null", polling=10)
            t_first_py = time.perf_counter()
            page.wait_for_timeout(50)
            page.wait_for_function(DONE_JS, polling=50)
            t_done_py = time.perf_counter()
            s = page.evaluate("() => window.__slm")
            bots = page.locator(BOT)
            answer = bots.nth(bots.count() - 1).inner_text().strip()
            shot = None
            if cfg.get("screenshot_dir"):
                shot = f"{cfg['screenshot_dir']}/{cfg.get('screenshot_prefix', 'gradio')}_{i}.png"
                page.screenshot(path=shot)
            out["turns"].append({
                "question": q, "answer": answer, "first_text": s["firstText"],
                "first_token_ms": s["first"] - s["enter"],  # Enter → text in the DOM
                "first_paint_ms": s["paint"] - s["enter"],  # Enter → next frame with it
                "first_token_ms_driver": (t_first_py - t_enter) * 1000,
                "done_ms_driver": (t_done_py - t_enter) * 1000, "screenshot": shot})
        ctx.close()
        browser.close()


def hosts(urls: list[str]) -> list[str]:
    return sorted({urlparse(u).netloc for u in urls
                   if urlparse(u).scheme in ("http", "https", "ws", "wss")})


def main(argv=None) -> int:
    argv = argv or sys.argv[1:]
    with open(argv[0], encoding="utf-8") as f:
        cfg = json.load(f)
    result: dict = {"mode": cfg["mode"]}
    rc = 0
    try:
        (run_client if cfg["mode"] == "client" else run_browser)(cfg, result)
    except Exception as e:  # reported to the parent as data, next to what was done before it
        result["error"] = f"{type(e).__name__}: {e}"
        rc = 1
    result["hosts"] = hosts(result.get("requests", []))
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
