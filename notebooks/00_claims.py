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
# # 00 · Claims ledger: which of the articles' numbers hold?
#
# The study's conclusion: it runs after the sections and judges the five seed articles
# (`seeds/000`–`004`) by what they measured. `data/claims.yaml` lists every checkable number with
# the verbatim quote it comes from. Each claim is judged by arithmetic (weights bytes =
# parameters × bits per weight ÷ 8), the architecture config of the model registry, vendor
# datasheets (`data/hardware.yaml`), the vendors' published scores and weight files
# (`data/published_scores.yaml`, `data/published_artifacts.yaml`), physics (batch-1 decode
# tokens/s ≤ memory bandwidth ÷ bytes read per token; time to first token ≥ the prompt's
# matmul operations ÷ peak compute) — and by **this run's measurements and the committed GPU snapshots**
# (`results/`): a speed claim on an RTX 3060 is checked against the study's own engines,
# measured on a GPU and carried to the RTX 3060's bandwidth. Verdicts: **consistent**,
# **inconsistent** (contradicts a primary source or a measurement), **physically impossible**
# (contradicts physics or a definition), or **not testable here** (the reason is given).
# Rules and tolerances: `slmstudy/claims/` (`vocabulary.py` holds every tolerance).

# %%
import pandas as pd
from IPython.display import Markdown, display

from slmstudy import claims as C
from slmstudy import plotting
from slmstudy.claims import ledger, measured
from slmstudy.params import validate
from slmstudy.provenance import provenance
from slmstudy.results import SectionResults, write_provenance
from slmstudy.schemas import ClaimsSummary

# %% tags=["parameters"]
run_id = "default"  # results go to build/runs/<run_id>/00_claims/

# %%
P = validate("00_claims", dict(run_id=run_id))
results = SectionResults(P.run_id, "00_claims")
write_provenance(P.run_id, provenance({"params_00_claims": P.model_dump()}))
plotting.setup_style()
pd.set_option("display.max_colwidth", None)
print(f"results: {results.dir}")

# %% [markdown]
# ## The architecture facts the rules use
# Read from the model registry (`slmstudy/models.py`, copied from each checkpoint's
# `config.json`): exact parameter counts, context length, and the shapes the KV-cache and
# roofline arithmetic need. `context_extended` is a vendor-documented RoPE-scaled length that the
# shipped config does not enable.

# %%
evidence = ledger.measurements_from_run(results.dir.parent)
claims, verdicts, arch, hardware = ledger.judge_ledger(evidence)
_, rules_only, _, _ = ledger.judge_ledger()  # the same claims without measurements, for comparison
pd.DataFrame(arch).T.assign(params_b=lambda d: d.params.astype(float) / 1e9)

# %% [markdown]
# ## What was measured
# The run folder and the committed snapshots the measurements come from: each speed row is one
# engine × model × format at batch 1, with the bandwidth measured on that device the same sitting.

# %%
pd.DataFrame(evidence.sources) if evidence.sources else Markdown("No measurements found.")

# %% [markdown]
# ## Verdicts
# How many of the articles' numbers survive the checks, overall and per article.

# %%
counts = C.verdict_counts(verdicts)
by_article = pd.DataFrame(ledger.counts_by_article(claims, verdicts)).T
by_article.loc["all"] = by_article.sum()
display(Markdown(f"**{len(claims)} claims**: " + ", ".join(f"{n} {v}" for v, n in counts.items())))
by_article

# %% [markdown]
# ### Verdicts per article
# Look at the red and orange segments: numbers that contradict the arithmetic or the models'
# configs (orange) and numbers no hardware could produce (red, e.g. decode speeds above the
# memory-bandwidth roofline). Grey claims are not testable here; the ledger below says why.
# The scorecard counts each article's command lines, run as written (below), beside its claims.

# %%
command_rows = measured.command_verdicts(evidence)
scorecard = pd.DataFrame(ledger.counts_by_article(claims, verdicts, command_rows)).T
fig = ledger.verdicts_figure(scorecard)
fig.axes[0].set_title("Scorecard: the claims and command lines of each seed article")
fig.axes[0].set_xlabel("claims and command lines")
plotting.show(fig, "00_claims_verdicts",
              caption="Verdict counts per seed article, its command lines run as written included")

# %% [markdown]
# ## What the measurements decided
# Each claim a measurement took part in: the verdict of the rules alone (physics, arithmetic,
# datasheets) beside the verdict with the measurements, and the arithmetic that carries the
# measured engine to the claim's hardware. A physical impossibility stands whatever is measured.

# %%
measured_table = pd.DataFrame(ledger.measured_rows(claims, verdicts, rules_only))
measured_table

# %% [markdown]
# ## The articles' command lines, run as written
# Notebook 01 ran the articles' vLLM command lines here, exactly as printed but for the model id
# (a local replica of the same architecture) and the port (`data/commands.yaml`), and article
# 001's code listings with only the model path changed. A command that serves (a listing that
# runs) is **consistent** with its article; one that vLLM refuses (a listing that fails) is
# **inconsistent**, with the error it printed and the corrections it needed; one that needs what
# this machine lacks (a Docker engine) is **not testable here**.

# %%
pd.DataFrame(command_rows) if command_rows else Markdown(
    "No command records: notebook 01 runs them with `article_commands: true`.")

# %% [markdown]
# ## Coverage: every section of every article
# Each section of the five articles with the claims drawn from it, or why it has none —
# *nothing checkable* (motivation, advice) or *pending*: checkable statements (features,
# comparisons) the ledger does not hold yet. Command lines count where notebook 01 ran them.

# %%
coverage = ledger.coverage_rows(claims, verdicts, commands=command_rows)
pd.DataFrame(coverage)

# %% [markdown]
# ## The ledger, with evidence
# Every claim: where it comes from (article §section and the verbatim quote), what it states,
# the verdict, what the verdict rests on (`basis`) and the arithmetic behind it.

# %%
rows = C.ledger_rows(claims, verdicts)
table = pd.DataFrame(rows)
order = {v: i for i, v in enumerate((C.IMPOSSIBLE, C.INCONSISTENT, C.CONSISTENT, C.NOT_TESTABLE))}
table = table.sort_values(["verdict", "article", "id"], key=lambda s: s.map(order) if s.name == "verdict" else s)
table[["id", "section", "quote", "model", "metric", "claimed", "precision", "hardware",
       "verdict", "basis", "evidence"]].reset_index(drop=True)

# %%
summary_path = results.write_summary(ClaimsSummary(
    n_claims=len(claims), verdict_counts=counts,
    by_article=ledger.counts_by_article(claims, verdicts),
    rows=rows, arch=arch, params=P.model_dump(), coverage=coverage,
    measured=ledger.measured_rows(claims, verdicts, rules_only), evidence_sources=evidence.sources,
    commands=command_rows))
print(f"summary: {summary_path}")

# %% [markdown]
# ## Findings
# Generated from the summary just written (`ledger.findings`).

# %%
display(Markdown(ledger.findings(results.read_summary())))
