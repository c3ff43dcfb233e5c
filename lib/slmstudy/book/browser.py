"""Read the built book as a reader would: every page in headless Chromium (Debian's, driven by
Playwright), from a static server on 127.0.0.1 and from file://.

Per page it records the height, every image (loaded or not; captioned or not), every output area
that holds stderr or a log line, whether the page's CJK text is drawn with real glyphs, every
internal link (target file and anchor resolved against the built files), and every request that
would leave the machine (aborted and counted). `problems()` lists what a reader would trip on;
the book's test asserts there are none, and that it finds each planted fault.

Chromium starts with the flags this machine needs (no background networking: its connections are
refused here) and a fresh profile.
"""

from __future__ import annotations

import functools
import html
import http.server
import re
import threading
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
#: the page-height bound (CSS px at 1280 px wide): the issue's 02_speed page was ~38,000 px
MAX_HEIGHT_PX = 25_000
#: what a log line or a progress bar looks like when it reaches a page's text outputs
LOG_LINE = re.compile(r"(\d+%\|[█▏▎▍▌▋▊▉ ]*\||\bit/s\]|\b(WARNING|INFO|DEBUG)\b( \d\d-\d\d|:)|llama_model_loader:|"
                      r"\bpid=\d+\))", re.MULTILINE)

# In the page: CJK glyph check. Draw each CJK character of the page's text in the font the page
# uses for it, and a private-use character no font has (its box/.notdef); a character drawn the
# same as the box has no glyph.
_JS_PAGE = r"""
() => {
  const out = {height: document.documentElement.scrollHeight, images: [], stderr: 0, outputs: [],
               cjk_chars: 0, cjk_missing: []};
  for (const img of document.images) {
    const fig = img.closest('figure');
    out.images.push({src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0,
                     in_output: !!img.closest('.cell_output, .output'),
                     captioned: !!(fig && fig.querySelector('figcaption') &&
                                  fig.querySelector('figcaption').innerText.trim().length > 0)});
  }
  out.stderr = document.querySelectorAll(
    '.output.stderr, .stderr, [data-mime-type="application/vnd.jupyter.stderr"]').length;
  for (const o of document.querySelectorAll('.cell_output .output, .cell_output pre')) {
    out.outputs.push(o.innerText.slice(0, 20000));
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Map();
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!el || el.closest('details:not([open])') && el.offsetParent === null) continue;
    for (const ch of node.textContent) {
      if (/[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]/.test(ch) && !seen.has(ch)) {
        seen.set(ch, getComputedStyle(el));
      }
    }
  }
  out.cjk_chars = seen.size;
  const canvas = document.createElement('canvas');
  canvas.width = 40; canvas.height = 40;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (ch, font) => {
    ctx.clearRect(0, 0, 40, 40); ctx.font = font; ctx.fillStyle = '#000';
    ctx.fillText(ch, 4, 30);
    return ctx.getImageData(0, 0, 40, 40).data.join(',');
  };
  let n = 0;
  for (const [ch, st] of seen) {
    if (n++ >= 3000) break;
    const font = `${st.fontStyle} ${st.fontWeight} 28px ${st.fontFamily}`;
    const glyph = draw(ch, font), box = draw('\uE000', font), blank = draw(' ', font);
    if (glyph === box || glyph === blank) out.cjk_missing.push(ch);
  }
  return out;
}
"""


@dataclass
class PageReport:
    page: str
    height: int = 0
    images: list[dict] = field(default_factory=list)
    stderr_areas: int = 0
    log_lines: list[str] = field(default_factory=list)
    cjk_chars: int = 0
    cjk_missing: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    screenshot: str | None = None


@dataclass
class BookReport:
    html_dir: str
    base: str
    pages: list[PageReport] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)  # pages that did not load or go quiet in time

    def problems(self, max_height_px: int = MAX_HEIGHT_PX) -> list[str]:
        out = [f"request leaving the machine: {u}" for u in self.external_requests]
        out += [f"request failed: {u}" for u in self.failed_requests]
        out += self.unsettled
        for p in self.pages:
            if p.height > max_height_px:
                out.append(f"{p.page}: {p.height} px tall (bound {max_height_px})")
            out += [f"{p.page}: image not loaded: {i['src']}" for i in p.images if not i["loaded"]]
            out += [f"{p.page}: figure without a caption: {i['src']}" for i in p.images
                    if i["in_output"] and not i["captioned"]]
            if p.stderr_areas:
                out.append(f"{p.page}: {p.stderr_areas} stderr output area(s)")
            out += [f"{p.page}: log output on the page: {line!r}" for line in p.log_lines]
            if p.cjk_missing:
                out.append(f"{p.page}: CJK characters drawn without a glyph: {''.join(p.cjk_missing[:20])}")
            out += [f"{p.page}: broken link {h}" for h in p.broken_links]
        return out

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------ links


_ID = re.compile(r"""\bid\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_HREF = re.compile(r"""<a\b[^>]*\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def _ids(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return frozenset(html.unescape(a or b) for a, b in _ID.findall(text))


def broken_links(html_dir: Path, page: Path) -> list[str]:
    """Internal links of `page` whose file does not exist under html_dir, or whose #anchor is
    not an id in the target page. External (http:, mailto:) links are not followed."""
    out = []
    text = page.read_text(encoding="utf-8", errors="replace")
    for href in sorted({html.unescape(a or b) for a, b in _HREF.findall(text)}):
        if not href or href.startswith(("http:", "https:", "//", "mailto:", "javascript:", "data:")):
            continue
        parsed = urllib.parse.urlsplit(href)
        target = page if not parsed.path else (page.parent / urllib.parse.unquote(parsed.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        try:
            target.relative_to(html_dir.resolve())
        except ValueError:
            out.append(f"{href} (outside the book)")
            continue
        if not target.is_file():
            out.append(f"{href} (no file)")
        elif parsed.fragment and target.suffix == ".html" and not (
                {parsed.fragment, urllib.parse.unquote(parsed.fragment)} & _ids(target)):
            out.append(f"{href} (no anchor #{parsed.fragment})")
    return out


# ------------------------------------------------------------------------------ server


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):  # noqa: D401 - the book's test reads requests from the browser
        pass


@dataclass
class StaticServer:
    root: Path
    port: int = 0

    def __enter__(self):
        handler = functools.partial(_Quiet, directory=str(self.root))
        self._srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._srv.server_address[1]
        self._t = threading.Thread(target=self._srv.serve_forever, daemon=True)
        self._t.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __exit__(self, *exc):
        self._srv.shutdown()
        self._srv.server_close()


# ------------------------------------------------------------------------------ the check


def book_pages(html_dir: Path) -> list[Path]:
    """The pages a reader reads (Sphinx's search and index pages included: they ship too)."""
    return sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts and "_downloads" not in p.parts
                  and "_sources" not in p.parts and "records" not in p.parts)


def check_book(html_dir: str | Path, screenshots: str | Path | None = None, via: str = "http",
               width: int = 1280, height: int = 900, shot_max_px: int = 8000,
               pages: list[str] | None = None, timeout_s: float = 60) -> BookReport:
    """Open every page of the built book (or `pages`, paths relative to html_dir) in headless
    Chromium; `via` "http" (a static server on 127.0.0.1) or "file". With `screenshots`, a PNG
    of each page (full page, at most shot_max_px tall) goes there."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir).resolve()
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: `make setup` installs Debian's chromium")
    todo = [html_dir / p for p in pages] if pages else book_pages(html_dir)
    shots = Path(screenshots) if screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    server = StaticServer(html_dir) if via == "http" else None
    if server:
        server.__enter__()
    base = server.url if server else html_dir.as_uri() + "/"
    report = BookReport(html_dir=str(html_dir), base=base)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            ctx = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")

            def route(r):
                url = r.request.url
                local = url.startswith(("file:", "data:", "blob:", "about:")) or (server and url.startswith(base))
                if local:
                    r.continue_()
                else:
                    report.external_requests.append(url)
                    r.abort()

            ctx.route("**/*", route)
            ctx.on("requestfailed", lambda req: report.failed_requests.append(req.url)
                   if req.url not in report.external_requests else None)
            page = ctx.new_page()
            for path in todo:
                rel = path.relative_to(html_dir).as_posix()
                try:
                    page.goto(base + rel, wait_until="load", timeout=timeout_s * 1000)
                except PlaywrightTimeout:
                    report.unsettled.append(f"{rel}: not loaded after {timeout_s:g} s")
                    continue
                try:  # a page still fetching after the timeout is named, and read as it stands
                    page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
                except PlaywrightTimeout:
                    report.unsettled.append(f"{rel}: still making requests {timeout_s:g} s after it loaded")
                data = page.evaluate(_JS_PAGE)
                pr = PageReport(page=rel, height=int(data["height"]), images=data["images"],
                                stderr_areas=int(data["stderr"]), cjk_chars=int(data["cjk_chars"]),
                                cjk_missing=data["cjk_missing"])
                for text in data["outputs"]:
                    pr.log_lines += [line.strip()[:160] for line in text.splitlines() if LOG_LINE.search(line)][:3]
                pr.broken_links = broken_links(html_dir, path)
                if shots:
                    png = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
                    page.screenshot(path=str(png), full_page=True,
                                    clip={"x": 0, "y": 0, "width": width, "height": min(pr.height, shot_max_px)})
                    pr.screenshot = str(png)
                report.pages.append(pr)
            browser.close()
    finally:
        if server:
            server.__exit__(None, None, None)
    return report


def search_titles(html_dir: str | Path, query: str, timeout_s: float = 30) -> list[str]:
    """The page titles Sphinx's own search (search.html, its index in searchindex.js) lists for
    `query`, run in headless Chromium from file:// — the book's search works without a server."""
    from playwright.sync_api import sync_playwright

    url = (Path(html_dir).resolve() / "search.html").as_uri() + "?q=" + urllib.parse.quote(query)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        page.wait_for_function("() => document.querySelector('#search-results p, .search-summary')",
                               timeout=timeout_s * 1000)
        page.wait_for_timeout(500)
        titles = [t.strip() for t in page.locator("#search-results li > a").all_inner_texts()]
        browser.close()
    return titles

