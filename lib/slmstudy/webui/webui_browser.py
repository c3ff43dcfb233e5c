"""Drive Open WebUI in headless Chromium: log in, ask questions, time the first visible token.

Runs under Open WebUI's own environment (`.venv-webui/bin/python webui_browser.py in.json
out.json`), where Playwright is installed; it imports nothing from slmstudy, and the study's
environment never imports it (`slmstudy.webui.browser_chat` starts it as a subprocess).
Chromium is the Debian one (`executable_path`); `playwright install` is never run.

Timing happens inside the page, on one clock (`performance.now()`): a capturing keydown listener
stamps the Enter press, a MutationObserver stamps the first moment the new answer's
`#response-content-container` holds text, and the next animation frame after it stamps when
that text was painted.
"""

from __future__ import annotations

import json
import sys
import time
from urllib.parse import urlparse

# every host name resolves to nothing except 127.0.0.1: a request that tries to leave the machine
# fails in the resolver and shows up in `failed_requests`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

ARM_JS = """() => {
  const s = {enter: null, first: null, paint: null, firstText: null,
             n0: document.querySelectorAll('#response-content-container').length};
  window.__slm = s;
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && s.enter === null) s.enter = performance.now();
  }, {capture: true});
  const check = () => {
    if (s.first !== null || s.enter === null) return;
    const els = document.querySelectorAll('#response-content-container');
    if (els.length <= s.n0) return;
    const el = els[els.length - 1];
    const text = el.innerText.trim();
    if (text.length > 0) {
      s.first = performance.now(); s.firstText = text;
      requestAnimationFrame(() => { s.paint = performance.now(); });
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""

# an answer is complete when its action buttons (copy, …) appear: Open WebUI renders them once
# the message is marked done
DONE_JS = "(n0) => document.querySelectorAll('.copy-response-button').length > n0"


def _dismiss_changelog(page) -> bool:
    """First login shows a "What's New" dialog over the chat; close it."""
    try:
        page.get_by_role("button", name="Okay, Let's Go!").click(timeout=4000)
        return True
    except Exception:
        return False


def run(cfg: dict, out: dict) -> dict:
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

        t0 = time.perf_counter()
        page.goto(f"{base}/auth")
        page.fill("input[type=email]", cfg["email"])
        page.fill("input[type=password]", cfg["password"])
        page.click("button[type=submit]")
        page.wait_for_selector("#chat-input")
        out["login_s"] = time.perf_counter() - t0
        out["changelog_dismissed"] = _dismiss_changelog(page)

        for i, q in enumerate(cfg["questions"]):
            if i > 0:  # every question in a new chat: the same prompt shape as the API requests
                page.goto(f"{base}/")
                page.wait_for_selector("#chat-input")
                _dismiss_changelog(page)
            page.evaluate(ARM_JS)
            n_done0 = page.locator(".copy-response-button").count()
            page.click("#chat-input")
            page.keyboard.type(q)
            t_enter = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_function("() => window.__slm.first !== null", polling=10)
            page.wait_for_function("() => window.__slm.paint !== null", polling=10)
            t_first_py = time.perf_counter()
            page.wait_for_function(DONE_JS, arg=n_done0, polling=50)
            t_done_py = time.perf_counter()
            s = page.evaluate("() => window.__slm")
            answers = page.locator("#response-content-container")
            answer = answers.nth(answers.count() - 1).inner_text().strip()
            shot = None
            if cfg.get("screenshot_dir"):
                shot = f"{cfg['screenshot_dir']}/{cfg.get('screenshot_prefix', 'webui')}_{i}.png"
                page.screenshot(path=shot)
            out["turns"].append({
                "question": q, "answer": answer, "first_text": s["firstText"],
                "first_token_ms": s["first"] - s["enter"],  # Enter → text in the DOM
                "first_paint_ms": s["paint"] - s["enter"],  # Enter → next frame with it
                "first_token_ms_driver": (t_first_py - t_enter) * 1000,  # seen from Playwright
                "done_ms_driver": (t_done_py - t_enter) * 1000,
                "screenshot": shot})
        ctx.close()
        browser.close()
    return out


def hosts(urls: list[str]) -> list[str]:
    return sorted({urlparse(u).netloc for u in urls
                   if urlparse(u).scheme in ("http", "https", "ws", "wss")})


def main(argv=None) -> int:
    argv = argv or sys.argv[1:]
    with open(argv[0], encoding="utf-8") as f:
        cfg = json.load(f)
    result: dict = {}
    rc = 0
    try:
        run(cfg, result)
    except Exception as e:  # reported to the parent as data, next to what was done before it
        result["error"] = f"{type(e).__name__}: {e}"
        rc = 1
    result["hosts"] = hosts(result.get("requests", []))
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
