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
# # 04 · Math: GSM8K and MATH-500, every answer checked by program
#
# `seeds/` 004 §4 claims that Qwen2.5-7B "beats 13B models" in math from **three** hand-picked
# questions (one algebra, one number theory, one calculus), scored ✅/❌ (100% vs 67% vs 33%);
# 003 §3.2 rests on a single set-arithmetic question. Three samples cannot separate 100% from 33%
# with any confidence. Here the models answer seeded subsets of two public benchmarks with greedy
# decoding, and each answer is extracted and compared by program:
#
# - **GSM8K** (grade-school word problems) under two **named protocols** (table below): task
#   `gsm8k` is lm-evaluation-harness's own `gsm8k` — plain text, 5 train-split exemplars drawn as
#   lm-eval draws them, the generation cut at "Question:", lm-eval's exact match — the way
#   published GSM8K scores are made; task `gsm8k_cot` is lm-eval's `gsm8k_cot` on the same items —
#   the 8 fixed chain-of-thought exemplars of Wei et al., `Q: … A:`, cut at "Q:", strict reading
#   `The answer is N`; task `gsm8k_chat` asks the model, in its chat template, to end with
#   `#### <number>`. *Strict* takes the protocol's own answer marker (none = **format failure**);
#   *flexible* takes the last number in the output. Both are reported.
# - **MATH-500** (competition problems, levels 1–5) under Qwen2.5-Math's own evaluation: its
#   system prompt ("Please reason step by step, and put your final answer within \boxed{}"), 2048
#   new tokens, and its answer reading — the last box, else "the answer is …", else the last
#   number — compared with the gold answer by normalisation, then math-verify, then a safe sympy
#   check. The box-only reading is kept as a second verdict (`boxed_accuracy`). The subset is
#   proportional to the levels' sizes (nested and seeded), so a partial run is not biased toward
#   the easy levels, and accuracy can be read per level.
#
# Scores are Wilson 95% intervals; the same generations give tokens/s.

# %%
import pandas as pd
from IPython.display import display

from slmstudy import datasets, forms, plotting, schemas
from slmstudy.evals import mathx, protocols, runner, views
from slmstudy.evals import peer as peer_mod
from slmstudy.models import EMBEDDED_KEY
from slmstudy.params import validate
from slmstudy.results import SectionResults

# %% tags=["parameters"]
run_id = "default"  # results go to build/runs/<run_id>/04_math/
data_dir = None  # benchmark data folder (None: SLMSTUDY_DATA_DIR, else ../shared/data)
seed = 0  # subset sampling and generation seed (decoding is greedy)
threads = 2  # CPU threads per engine (None: all cores)
n_ctx = 4096  # llama.cpp context, tokens
device = "cpu"  # where the engines run: cpu, or cuda (their GPU defaults)
batch = 1  # samples per engine call where the engine batches (vLLM); 1: one by one
gsm8k_n = 15  # GSM8K test items (seeded random subset)
gsm8k_shots = 5  # lm-eval gsm8k: train-split exemplars drawn as lm-eval draws them (0-8)
gsm8k_chat = True  # also the 0-shot chat variant (task gsm8k_chat)
gsm8k_cot = True  # also lm-eval's gsm8k_cot: 8 fixed chain-of-thought exemplars (task gsm8k_cot)
gsm8k_max_tokens = 256  # generation budget per GSM8K answer, tokens (lm-eval: 256)
math500_n = 10  # MATH-500 items, proportional to the levels 1-5 (nested, seeded)
math500_max_tokens = 2048  # generation budget per MATH answer, tokens (Qwen2.5-Math eval: 2048)
peer_lmeval = True  # lm-eval generates on the same GSM8K items; compared item by item
targets = [  # model × engine whose answers are scored
    {"model": "smollm2_135m", "engine": "llamacpp"},
    {"model": "gemma3_270m", "engine": "llamacpp"},  # base model: lm-eval's gsm8k only
]

# %%
P = validate("04_math", dict(
    run_id=run_id, data_dir=data_dir, seed=seed, threads=threads, n_ctx=n_ctx, device=device, batch=batch, gsm8k_n=gsm8k_n,
    gsm8k_shots=gsm8k_shots, gsm8k_chat=gsm8k_chat, gsm8k_cot=gsm8k_cot,
    gsm8k_max_tokens=gsm8k_max_tokens, math500_n=math500_n, peer_lmeval=peer_lmeval,
    math500_max_tokens=math500_max_tokens, targets=targets))
SECTION = "04_math"
results = SectionResults(P.run_id, SECTION)
tasks = mathx.build_tasks(P)  # data files are checked against MANIFEST.json sha256 here
data_used = datasets.provenance([n for n in ("gsm8k", "math500") if getattr(P, f"{n}_n")],
                                P.data_dir)
runner.write_section_provenance(results, P.model_dump(), data_used)
plotting.setup_style()
display(pd.DataFrame([{"task": t.name, "protocol": t.protocol, "samples": len(t.samples),
                       "max_tokens": t.max_tokens, "shots": t.config.get("shots"),
                       "config": t.config_id} for t in tasks]))
pd.DataFrame(protocols.table(sorted({t.protocol for t in tasks if t.protocol})))

# %% [markdown]
# ## Run
# One backend per target; records are appended as each answer is scored (a rerun resumes).

# %%
records, target_infos = runner.run_section(P, tasks, results)
display(pd.DataFrame(target_infos)[["label", "engine", "path", "load_s", "n_records"]])
runner.skipped_table(target_infos)  # protocols a target could not run, and why (a base model: no chat template)

# %% [markdown]
# ## Accuracy with 95% intervals, next to speed
# For GSM8K, `accuracy` is strict (the protocol's marker) and `flexible_accuracy` the last-number
# reading; for MATH-500, `accuracy` is Qwen2.5-Math's reading and `boxed_accuracy` the box alone.
# `hit_max_tokens` counts answers cut off by the generation budget (often a model looping).

# %%
rows = runner.summarize(records)
views.table(rows, extra=["flexible_accuracy", "flexible_ci_low", "flexible_ci_high",
                         "boxed_accuracy", "boxed_ci_low", "boxed_ci_high"])

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
# Bars: the protocol's accuracy (Wilson 95% CI); ×: format-failure rate. GSM8K's flexible reading
# and MATH-500's box-only reading are separate rows, so the gap shows how much the answer format
# decides.

# %%
fig_rows = [{**r, "mode": "strict" if r["task"].startswith("gsm8k") else "Qwen2.5-Math reading"}
            for r in rows]
for r in rows:
    for name, label in (("flexible", "flexible (last number)"), ("boxed", "last \\boxed{} only")):
        if r.get(f"{name}_accuracy") is not None:
            fig_rows.append({**r, "mode": label, "accuracy": r[f"{name}_accuracy"],
                             "ci_low": r[f"{name}_ci_low"], "ci_high": r[f"{name}_ci_high"],
                             "format_failure_rate": r[f"{name}_format_failure"] / r["n"]})
fig = views.accuracy_figure(fig_rows, title="Math accuracy (greedy; Wilson 95% CI)")
plotting.show(fig, "04_math_accuracy", caption="GSM8K (lm-eval gsm8k, gsm8k_cot, chat) strict/"
              "flexible and MATH-500 (Qwen2.5-Math reading / box only) accuracy")

# %% [markdown]
# ### Figure: MATH-500 by difficulty level
# Accuracy per level (1 = easiest) with Wilson 95% CIs. With a few items per level the intervals
# are wide: read the trend, not single points.

# %%
math_records = [r for r in records if r["task"] == "math500"]
level_rows = runner.summarize(math_records, by=("target", "meta.level"))
if level_rows:
    fig = views.by_group_figure(level_rows, group="level", title="MATH-500 accuracy by level",
                                xlabel="MATH level (1 = easiest)")
    plotting.show(fig, "04_math_by_level", caption="MATH-500 accuracy by level, 95% CI")
views.table(level_rows, columns=["target", "level", "n", "correct", "wrong", "format_failure",
                                 "accuracy", "ci_low", "ci_high"])

# %% [markdown]
# ### Evidence: raw outputs
# What the model wrote, what was extracted, and the verdict.

# %%
display(views.examples([r for r in records if r["task"].startswith("gsm8k")], n=4, chars=300))
views.examples(math_records, n=4, chars=300)

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

# %% [markdown]
# ## A peer no one here wrote: lm-evaluation-harness on the same GSM8K items
# lm-eval generates, greedy, with its own `gsm8k` and `gsm8k_cot` task files (only the data
# source replaced by the study's items; the budget set to the study's), on the embedded model's
# HF folder with its transformers backend. Per item and target: is the study's prompt
# byte-identical to lm-eval's context, is the generated text the same, and do both read the same
# answer and verdict? The study's targets here run llama.cpp (the GGUF), so a text that differs
# is engine parity, not protocol: the prompts must still be identical. Reproduce:
# `slmstudy.evals.peer.section_peer_generative` (cached in `peer_lmeval_<task>.json`).

# %%
peer = None
if P.peer_lmeval and P.gsm8k_n:
    peer = peer_mod.section_peer_generative(tasks, records, results.dir, forms.HF.embedded(),
                                            model=EMBEDDED_KEY,
                                            train=datasets.load_gsm8k(P.data_dir, split="train"))
    display(pd.DataFrame(peer["by_target"]).round(4))
    display(pd.DataFrame(peer["differ"])[["sample_id", "task", "target", "prompt_identical",
                                          "text_identical", "study", "lm_eval"]]
            if peer["differ"] else "no item differs")

# %%
summary_path = results.write_summary(runner.section_summary(
    records, P.model_dump(), extra={"targets": target_infos, "math500_by_level": level_rows,
                                    "data": data_used, "peer_lmeval": peer},
    schema=schemas.MathSummary))
print(f"summary: {summary_path}  ({len(records)} samples)")

# %% [markdown]
# ## Findings
# Generated from the summary just written (`views.findings`): each target's accuracy with its
# Wilson 95% interval, and whether the intervals separate the targets.

# %%
from IPython.display import Markdown

display(Markdown(views.findings(results.read_summary())))
