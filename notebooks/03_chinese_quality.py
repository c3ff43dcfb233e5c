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
# # 03 · Chinese quality: CMMLU, C-Eval and everyday tasks, scored by program
#
# The articles grade Chinese quality by hand: `seeds/` 001 §3.3 scores four prompts 1–5
# ("立春通常在几月？", a 元宵节 greeting, bubble sort, the cats-and-mice puzzle), 003 §3.1–3.4 shows
# one example each of compound instructions, set arithmetic and table reading. One prompt per
# skill, no protocol, no intervals. Here the same kinds of question are asked of every model ×
# engine with **greedy decoding**, and every answer is scored by a program:
#
# - **CMMLU** and **C-Eval** multiple choice (seeded subsets, proportional to the subjects), each under two
#   **named protocols** (table below): lm-evaluation-harness's own `cmmlu` / `ceval-valid` at
#   5 shots (plain text, the subject's description, dev-split shots, the answer the most likely of
#   " A" … " D", read from the engine's logits) — the way published base-model scores are made —
#   and a *generative* variant in the model's chat template (the letter extracted from the free
#   answer; none found = **format failure**, counted apart from wrong answers);
# - the project's own task set `data/zh_tasks.yaml` (daily QA, festival greetings, instructions
#   with format constraints, table reading, reasoning), each with a programmatic rubric: expected
#   facts present, wrong associations absent, format obeyed, language right, question not echoed.
#
# Every sample is logged with its prompt, raw output, extracted answer, verdict and timings, so
# accuracy sits next to the tokens/s of the very same generations. Scores are Wilson 95%
# intervals. A small model scoring near chance is a finding, not a failure of the notebook.

# %%
import pandas as pd
from IPython.display import display

from slmstudy import datasets, forms, plotting
from slmstudy.evals import chinese, protocols, runner, views
from slmstudy.evals import peer as peer_mod
from slmstudy.models import EMBEDDED_KEY
from slmstudy.params import validate
from slmstudy.results import SectionResults

# %% tags=["parameters"]
run_id = "default"  # results go to build/runs/<run_id>/03_chinese_quality/
data_dir = None  # benchmark data folder (None: SLMSTUDY_DATA_DIR, else ../shared/data)
seed = 0  # subset sampling and generation seed (decoding is greedy)
threads = 2  # CPU threads per engine (None: all cores)
n_ctx = 4096  # llama.cpp context, tokens
device = "cpu"  # where the engines run: cpu, or cuda (their GPU defaults)
batch = 1  # samples per engine call where the engine batches (vLLM); 1: one by one
cmmlu_n = 24  # CMMLU test items, spread evenly over the 67 subjects
ceval_n = 12  # C-Eval val items, spread evenly over the 52 subjects
shots = 5  # few-shot examples per question, from the same subject's dev split (0-5; lm-eval: 5)
mc_max_tokens = 24  # generation budget for a multiple-choice answer, tokens
peer_lmeval = True  # lm-eval scores the same log-likelihood items; compared item by item
zh_tasks = True  # run the project's own rubric tasks (data/zh_tasks.yaml)
zh_categories = None  # restrict to these categories (None: all)
zh_max_tokens = 192  # generation budget for an own task, tokens
targets = [  # model × engine; generate: the chat-gen protocol; loglik: lm-eval's " A"…" D" log-likelihood
    {"model": "smollm2_135m", "engine": "llamacpp", "generate": True, "loglik": True},
    {"model": "smollm2_135m", "engine": "transformers", "generate": False, "loglik": True},
    {"model": "smollm2_135m", "engine": "openvino", "generate": False, "loglik": True},  # OpenVINO IR logits
    {"model": "gemma3_270m", "engine": "transformers", "generate": False, "loglik": True},  # base model
]

# %%
P = validate("03_chinese_quality", dict(
    run_id=run_id, data_dir=data_dir, seed=seed, threads=threads, n_ctx=n_ctx, device=device, batch=batch, cmmlu_n=cmmlu_n,
    ceval_n=ceval_n, shots=shots, mc_max_tokens=mc_max_tokens, peer_lmeval=peer_lmeval, zh_tasks=zh_tasks,
    zh_categories=zh_categories, zh_max_tokens=zh_max_tokens, targets=targets))
SECTION = "03_chinese_quality"
results = SectionResults(P.run_id, SECTION)
tasks = chinese.build_tasks(P)  # data files are checked against MANIFEST.json sha256 here
data_used = datasets.provenance([n for n in ("cmmlu", "ceval") if getattr(P, f"{n}_n")], P.data_dir)
runner.write_section_provenance(results, P.model_dump(), data_used)
plotting.setup_style()
display(pd.DataFrame([{"task": t.name, "mode": t.mode, "protocol": t.protocol, "samples": len(t.samples),
                       "max_tokens": t.max_tokens, "config": t.config_id} for t in tasks]))

# %% [markdown]
# ## The protocols, as written down in `slmstudy.evals.protocols`
# Each record carries its protocol id (`config.protocol`); a score is only comparable with a
# published one made under the same protocol.

# %%
pd.DataFrame(protocols.table(sorted({t.protocol for t in tasks if t.protocol})))

# %% [markdown]
# ## What the model sees
# The prompt is rendered once with the model's own tokenizer; the same token ids go to every
# engine. One CMMLU prompt of each protocol, as the engines see it (the generative one through
# the chat template, lm-eval's as plain text):

# %%
spec0 = P.targets[0]
for t in [t for t in tasks if t.name == "cmmlu"][:2]:
    print(f"--- {t.protocol} ---")
    print(runner.prompt_text(runner.target_from_spec(spec0, P), t, t.samples[0]))

# %% [markdown]
# ## Run: every target over every task
# One backend per target, kept loaded across tasks. Each record is appended as soon as it is
# scored; rerunning with the same `run_id` resumes and re-runs nothing already logged.

# %%
records, target_infos = runner.run_section(P, tasks, results)
display(pd.DataFrame(target_infos)[["label", "engine", "path", "load_s", "n_records"]])
runner.skipped_table(target_infos)  # protocols a target could not run, and why (a base model: no chat template)

# %% [markdown]
# ## Accuracy with 95% intervals, next to speed
# `accuracy` counts every sample (a format failure is not correct); `accuracy_answered` only the
# samples where an answer was found. Speed columns come from the same generations
# (log-likelihood rows have no decode phase).

# %%
rows = runner.summarize(records)
views.table(rows)

# %% [markdown]
# ### On a GPU: every item of each benchmark
# The committed GPU snapshots (`results/*-quality/`, made by `scripts/gpu/quality.sh`; each
# folder's README says how and what was left out) scored the full sets. Beside each of their
# rows is this run's accuracy for the same model, task and scoring mode, on its subset, with the
# engine it ran on.

# %%
views.beside_snapshots(SECTION, rows)

# %% [markdown]
# ### Figure: accuracy per task × target × scoring mode
# Bars: accuracy with Wilson 95% CI. ×: format-failure rate. Dotted: chance for four options.
# Look at whether the interval clears chance, and at how far generative and log-likelihood
# scoring of the same items lie apart.

# %%
fig = views.accuracy_figure(rows, title="Chinese quality (greedy; Wilson 95% CI)",
                            chance={"cmmlu": 0.25, "ceval": 0.25})
plotting.show(fig, "03_chinese_accuracy", caption="Accuracy with 95% CI per task, target, mode")

# %% [markdown]
# ## A peer no one here wrote: lm-evaluation-harness on the same items
# lm-eval runs its **own** `cmmlu_<subject>` / `ceval-valid_<subject>` task files (included from
# the installed package: its description, template, first_n shot sampler and `acc`), on its HF
# backend, offline, over exactly these items (only the data source is replaced by local files).
# Per target: how many of the study's prompts are byte-identical to lm-eval's contexts, and how
# often both chose the same letter; the items that differ are listed with the largest
# log-likelihood gap between the two. Reproduce: `slmstudy.evals.peer.section_peer` (cached in
# `peer_lmeval.json` beside the samples).

# %%
peer = (peer_mod.section_peer(tasks, records, results.dir, forms.HF.embedded(), model=EMBEDDED_KEY,
                              num_fewshot=P.shots) if P.peer_lmeval else None)
if peer:
    display(pd.DataFrame(peer["by_target"]).round(4))
    display(pd.DataFrame(peer["differ"]).round(4) if peer["differ"] else "no item differs")

# %% [markdown]
# ## Averaged over items and over subjects
# lm-eval's `cmmlu` / `ceval-valid` group score is the mean over items; the benchmarks' papers
# report the mean of per-subject accuracies. On a subset both are shown.

# %%
display(pd.DataFrame(chinese.subject_means(records)).round(3))

# %% [markdown]
# ## Paired agreement: engines and protocols on the same items
# Every pair of (target × mode) on the same items: the share of identical answers, each one's
# accuracy, and McNemar's exact test on the items only one of them got right (a small p says
# the accuracies differ beyond chance), with the paired difference and its 95% interval. Two
# engines' log-likelihoods of the same weights should agree almost everywhere; low agreement
# between the generative and the log-likelihood protocol says the model "knows" more than it
# manages to write in the asked format.

# %%
display(pd.DataFrame(chinese.mode_agreement(records)).round(3))
pd.DataFrame(chinese.letter_distribution(records)).round(3)

# %% [markdown]
# Letter shares per mode: a model that always writes the first option scores about the share of
# that letter among the gold answers (CMMLU's answers are close to uniform, 25% each).

# %% [markdown]
# ## The own task set: which rubric checks pass
# A task is correct only if every check passes; the share of checks passed is its partial score.
# Pass rates by kind of check show *what* fails: facts, forbidden content, format, language.

# %%
zh_records = [r for r in records if r["task"] == "zh_tasks"]
if zh_records:
    display(pd.DataFrame(chinese.rubric_breakdown(zh_records)).round(3))
    display(views.table(runner.summarize(zh_records, by=("target", "meta.category")),
                        columns=["target", "category", "n", "correct", "wrong", "format_failure",
                                 "accuracy", "ci_low", "ci_high", "score_mean"]))

# %% [markdown]
# ### Evidence: raw outputs
# A few answers as the model wrote them, with what was extracted and the verdict.

# %%
display(views.examples([r for r in records if r["mode"] == "generate"
                        and r["task"] != "zh_tasks"], n=4))
views.examples(zh_records, n=8)

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
summary_path = results.write_summary(chinese.section_summary(records, P, target_infos, data_used, peer))
print(f"summary: {summary_path}  ({len(records)} samples)")

# %% [markdown]
# ## Findings
# Generated from the summary just written (`views.findings`): each target's accuracy with its
# Wilson 95% interval, and whether the intervals separate the targets.

# %%
from IPython.display import Markdown

display(Markdown(views.findings(results.read_summary(), chance={"cmmlu": 0.25, "ceval": 0.25})))
