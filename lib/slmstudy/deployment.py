"""The deployment section: size on disk, cold/warm load, memory, time to first answer, and what
each OpenAI-compatible server actually supports (probed with real requests).

Cold load runs in a fresh Python process (`python -m slmstudy.deployment …`), optionally after
dropping the OS page cache (root only), so imports and file reads are paid as a user pays them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from .backends import registry
from .backends.base import RunContext
from .errors import StudyError
from .schemas import LoadRecord

CHAT = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


# ---------------------------------------------------------------- load measurements


def drop_page_cache() -> bool:
    """Drop the OS page cache so the next read comes from disk (root only). True if done."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def _child(engine: str, path: str, tokenizer_dir: str, options: dict) -> dict:
    """Runs inside the fresh process: import, load, first answer, peak RSS."""
    t_start = time.perf_counter()
    from .backends import registry
    from .backends.base import GenRequest
    from .chat import render_chat
    from .resources import PeakRSS

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        spec = registry.get(engine)
        __import__(spec.package)
        import_s = time.perf_counter() - t0
        ids = render_chat(tokenizer_dir, CHAT)
        b = spec.make(path, options=options)
        load_s = b.load()
        g = b.generate_one(GenRequest(prompt_ids=ids, max_tokens=32))
        first_answer_s = (g.token_times_ns[0] * 1e-9) - t_start if g.token_times_ns else None
        b.close()
    return {"engine": engine, "import_s": import_s, "load_s": load_s, "ttft_s": g.ttft_s,
            "time_to_first_answer_s": first_answer_s, "peak_rss_bytes": mem.peak_bytes,
            "answer": g.text, "n_tokens": g.n_tokens}


def measure_load_fresh_process(engine: str, path: Path, tokenizer_dir: Path, options: dict,
                               drop_cache: bool = False, timeout_s: float = 600) -> dict:
    """Cold load: a fresh interpreter (and, if asked and permitted, a dropped page cache)."""
    dropped = drop_page_cache() if drop_cache else False
    cmd = [sys.executable, "-m", "slmstudy.deployment", "--engine", engine, "--path", str(path),
           "--tokenizer", str(tokenizer_dir), "--options", json.dumps(options)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    wall = time.perf_counter() - t0
    line = next((l for l in reversed(proc.stdout.splitlines()) if l.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise StudyError(f"fresh-process load of {engine} failed (exit {proc.returncode}):\n"
                         f"{(proc.stderr or proc.stdout)[-2000:]}")
    out = json.loads(line)
    out.update(process_wall_s=wall, page_cache_dropped=dropped)
    return out


def measure_load_warm(engine: str, path: Path, options: dict) -> dict:
    """Warm load: the same process loads the model again (imports done, files in page cache)."""
    from .backends import registry
    from .resources import PeakRSS

    with PeakRSS() as mem:
        b = registry.make_backend(engine, path, options=options)
        load_s = b.load()
        b.close()
    return {"engine": engine, "load_s": load_s, "peak_rss_bytes": mem.peak_bytes}


# ---------------------------------------------------------------- the section's loops

# what the deployment section asks of every engine (the article's chat, a 2048-token context)
LOAD_CONTEXT = RunContext(n_ctx=2048, dtype="float32")


def _manifest(path: Path) -> dict:
    folder = path if path.is_dir() else path.parent
    m = folder / "artifact.json"
    return json.loads(m.read_text()) if m.is_file() else {}


def engine_artifacts(engines: list[str]) -> list[dict]:
    """What each engine loads of the embedded model: its form, size on disk and sha256
    (derived into the cache on first use)."""
    rows = []
    for e in engines:
        spec = registry.get(e)
        path = spec.form.embedded()
        man = _manifest(path)
        rows.append({"engine": e, "form": spec.form.name, "format": man.get("kind"),
                     "path": str(path), "size_bytes": man.get("size_bytes"),
                     "sha256": man.get("sha256")})
    return rows


def run_loads(engines: list[str], repetitions: int, results, *, drop_cache: bool,
              log=print) -> list[dict]:
    """Cold (fresh process) and warm (this process) loads of each engine, `repetitions` each;
    one record per load, appended as it completes (a rerun resumes). Returns every load record."""
    from .forms import HF

    tok_dir = HF.embedded()
    arts = {r["engine"]: r for r in engine_artifacts(engines)}
    done = results.done_keys()
    for e in engines:
        opts = registry.get(e).options_for(LOAD_CONTEXT).model_dump(exclude_defaults=True)
        path = Path(arts[e]["path"])
        for rep in range(repetitions):
            for kind in ("cold", "warm"):
                key = f"load/{e}/{kind}/{rep}"
                if key in done:
                    continue
                if kind == "cold":
                    r = measure_load_fresh_process(e, path, tok_dir, opts, drop_cache=drop_cache)
                else:
                    r = measure_load_warm(e, path, opts)
                results.append(LoadRecord(key=key, kind=kind, rep=rep, **r,
                                          size_bytes=arts[e]["size_bytes"]))
                log(f"{key}: load {r['load_s']:.2f} s, peak RSS "
                    f"{r['peak_rss_bytes'] / 1e6:.0f} MB")
    return [LoadRecord.model_validate(r).model_dump() for r in results.records()
            if r.get("key", "").startswith("load/")]


def load_table(records: list[dict]):
    """Medians per engine × cold/warm: load, import, time to first answer; peak RSS; size."""
    import pandas as pd

    loads = pd.DataFrame(records)
    return loads.groupby(["engine", "kind"]).agg(
        load_s=("load_s", "median"), import_s=("import_s", "median"),
        first_answer_s=("time_to_first_answer_s", "median"),
        peak_rss_MB=("peak_rss_bytes", lambda x: x.max() / 1e6),
        size_MB=("size_bytes", lambda x: x.iloc[0] / 1e6),
        n=("load_s", "size")).reset_index()


def load_figure(table):
    """Left: size on disk vs load time per engine (cold and warm); right: peak RSS of a cold
    load + one answer."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for kind, marker in (("cold", "o"), ("warm", "s")):
        t = table[table.kind == kind]
        a1.scatter(t.size_MB, t.load_s, marker=marker, label=kind, s=60)
        for _, r in t.iterrows():
            a1.annotate(r.engine, (r.size_MB, r.load_s), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
    a1.set_xlabel("size on disk (MB)")
    a1.set_ylabel("load time (s)")
    a1.set_yscale("log")
    a1.legend()
    c = table[table.kind == "cold"]
    a2.bar(c.engine, c.peak_rss_MB, color="#55a868")
    a2.set_ylabel("peak RSS, cold load + 1 answer (MB)")
    return fig


def probe_servers(servers: list[str], model: str, log_dir: Path, *,
                  tool_parser: str | None = None) -> tuple[list[dict], list[dict]]:
    """Start each engine's OpenAI-compatible server on the embedded model, probe its features
    with real requests, tear it down. Returns (start-up rows, probe rows)."""
    import shlex

    probes, startup = [], []
    for name in servers:
        spec = registry.get(name)
        srv = spec.serve(spec.form.embedded(), LOAD_CONTEXT, log_dir=log_dir, model_name=model,
                         tool_parser=tool_parser)
        with srv:
            startup.append({"server": srv.name, "ready_s": srv.ready_s,
                            "args": shlex.join(srv.command()[1:]),
                            "rss_MB": rss_of_tree(srv.proc.pid) / 1e6})
            for p in probe_server(srv.base_url, model):
                probes.append({"server": srv.name, "feature": p.feature, "ok": p.ok,
                               "evidence": p.evidence, "request": p.request})
    return startup, probes


# ---------------------------------------------------------------- server feature probes


@dataclass
class Probe:
    feature: str
    ok: bool
    request: dict
    evidence: str


def _post(base: str, body: dict, timeout: float = 300) -> dict:
    import httpx

    r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=timeout)
    if r.status_code != 200:
        return {"_http_error": r.status_code, "_text": r.text[:400]}
    return r.json()


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "city name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}

PERSON_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                                  "age": {"type": "integer"}},
                 "required": ["name", "age"]}


def probe_server(base_url: str, model: str) -> list[Probe]:
    """Real requests for the features the articles compare; each result keeps its request."""
    import jsonschema

    from .backends.servers import OpenAIStreamClient

    probes = []
    # streaming
    client = OpenAIStreamClient(base_url, model)
    req = {"messages": CHAT, "max_tokens": 32, "stream": True}
    g = client.chat_stream(CHAT, max_tokens=32)
    probes.append(Probe("streaming", len(g.token_times_ns) >= 2, req,
                        f"{len(g.token_times_ns)} content chunks, text {g.text[:60]!r}"))
    # stop sequences
    body = {"model": model, "messages": [{"role": "user", "content":
            "Write three short sentences about the sea."}], "max_tokens": 96,
            "temperature": 0, "stop": ["."]}
    r = _post(base_url, body)
    ch = (r.get("choices") or [{}])[0]
    text = (ch.get("message") or {}).get("content") or ""
    ok = "_http_error" not in r and "." not in text and ch.get("finish_reason") == "stop"
    probes.append(Probe("stop sequences", ok, body,
                        f"finish_reason={ch.get('finish_reason')!r}, text={text[:80]!r}"
                        if "_http_error" not in r else f"HTTP {r['_http_error']}: {r['_text']}"))
    # JSON mode
    body = {"model": model, "messages": [{"role": "user", "content":
            "Give a JSON object describing a cat with keys name and age."}],
            "max_tokens": 64, "temperature": 0, "response_format": {"type": "json_object"}}
    r = _post(base_url, body)
    text = ((r.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    try:
        obj = json.loads(text)
        ok, ev = isinstance(obj, dict), f"parsed: {text[:80]}"
    except (json.JSONDecodeError, TypeError):
        ok, ev = False, (f"not JSON: {text[:80]!r}" if "_http_error" not in r
                         else f"HTTP {r['_http_error']}: {r['_text']}")
    probes.append(Probe("JSON mode", ok, body, ev))
    # JSON schema (structured output)
    body = {"model": model, "messages": [{"role": "user", "content":
            "Invent a person. Reply as JSON with name and age."}], "max_tokens": 64,
            "temperature": 0, "response_format": {"type": "json_schema", "json_schema": {
                "name": "person", "schema": PERSON_SCHEMA, "strict": True}}}
    r = _post(base_url, body)
    text = ((r.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    try:
        jsonschema.validate(json.loads(text), PERSON_SCHEMA)
        ok, ev = True, f"valid against schema: {text[:80]}"
    except Exception as e:  # noqa: BLE001 — any failure is the evidence
        ok = False
        ev = (f"{type(e).__name__}: {text[:80]!r}" if "_http_error" not in r
              else f"HTTP {r['_http_error']}: {r['_text']}")
    probes.append(Probe("JSON schema", ok, body, ev))
    # tool calls: named (forced) and auto
    for mode, choice in (("tool call (forced)", {"type": "function",
                                                 "function": {"name": "get_weather"}}),
                         ("tool call (auto)", "auto")):
        body = {"model": model, "messages": [{"role": "user", "content":
                "What's the weather in Paris right now?"}], "max_tokens": 64, "temperature": 0,
                "tools": [WEATHER_TOOL], "tool_choice": choice}
        r = _post(base_url, body)
        msg = (r.get("choices") or [{}])[0].get("message") or {}
        calls = msg.get("tool_calls") or []
        ok, ev = False, (f"no tool_calls; content={str(msg.get('content'))[:80]!r}"
                         if "_http_error" not in r else f"HTTP {r['_http_error']}: {r['_text']}")
        if calls:
            fn = calls[0].get("function") or {}
            try:
                args = json.loads(fn.get("arguments") or "")
                ok = fn.get("name") == "get_weather" and isinstance(args, dict) and "city" in args
                ev = f"{fn.get('name')}({fn.get('arguments')})"
            except json.JSONDecodeError:
                ev = f"arguments not JSON: {fn.get('arguments')!r}"
        probes.append(Probe(mode, ok, body, ev))
    return probes


def rss_of_tree(pid: int) -> int:
    total = 0
    try:
        p = psutil.Process(pid)
        for q in [p, *p.children(recursive=True)]:
            total += q.memory_info().rss
    except psutil.Error:
        pass
    return total


def _main(argv=None):
    ap = argparse.ArgumentParser(description="one cold load in this fresh process (JSON out)")
    ap.add_argument("--engine", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--options", default="{}")
    a = ap.parse_args(argv)
    print(json.dumps(_child(a.engine, a.path, a.tokenizer, json.loads(a.options))), flush=True)


if __name__ == "__main__":
    _main()


def findings(summary: dict) -> str:
    """The deployment section's findings, generated from its summary.json."""
    out = []
    cold = [r for r in summary.get("loads") or [] if r["kind"] == "cold"]
    if cold:
        fast = min(cold, key=lambda r: r["load_s"])
        slow = max(cold, key=lambda r: r["load_s"])
        light = min(cold, key=lambda r: r["peak_rss_MB"])
        out.append(f"- Cold load (fresh process): fastest {fast['engine']} {fast['load_s']:.2f} s, "
                   f"slowest {slow['engine']} {slow['load_s']:.2f} s; least memory "
                   f"{light['engine']} ({light['peak_rss_MB']:.0f} MB peak RSS with one answer)")
    feats: dict[str, dict[str, bool]] = {}
    for p in summary.get("features") or []:
        feats.setdefault(p["feature"], {})[p["server"]] = p["ok"]
    for feature, by_server in sorted(feats.items()):
        yes = [s for s, ok in by_server.items() if ok]
        no = [s for s, ok in by_server.items() if not ok]
        if no:
            out.append(f"- {feature}: works on {', '.join(yes) or 'no server'}; fails on "
                       f"{', '.join(no)} (request and response in the table above)")
    if feats and all(all(v.values()) for v in feats.values()):
        out.append("- Every probed feature works on every server")
    g = summary.get("gradio")
    if g:
        over = {}
        for r in g["timings"]:
            over.setdefault(r["path"], []).append(f"{r['lang']} {r['over_engine_ms']:.0f} ms")
        st = g["stack"]["startup"]
        out.append(f"- Article 003's Gradio {st['gradio']} app over {st['engine']}: ready in "
                   f"{st['stack_s']:.1f} s; beyond the engine's own first token it adds "
                   f"{', '.join(over.get('gradio-client', []))} through gradio_client and "
                   f"{', '.join(over.get('browser', []))} in the browser (medians)")
    return "\n".join(out) or "- nothing measured yet"
