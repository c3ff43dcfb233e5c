"""The claims ledger wired to the model registry: the `arch` table `slmstudy.claims` expects,
judged verdicts, and the tables the claims notebook and the report show.

`claims.py` stays pure (it takes the architecture as a plain dict); this module builds that
dict from `models.REGISTRY`, so a model added to the registry is judged with no other change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from .. import claims as C
from ..models import REGISTRY
from . import measured

#: Context lengths a vendor documents beyond the shipped config (RoPE scaling the config does not
#: enable). Qwen2.5-7B-Instruct's model card: "Context Length: Full 131,072 tokens", reached with
#: YaRN (rope_scaling factor 4.0 over the config's 32,768). The 0.5B card states 32,768 only.
DOCUMENTED_CONTEXT_EXTENSIONS: dict[str, int] = {"qwen25_7b": 131072}


def arch_table(registry: Mapping[str, Any] = REGISTRY) -> dict[str, dict]:
    """model key -> {params, context, hidden, vocab, tied_embeddings, layers, kv_heads, head_dim,
    context_extended}, read from each registry entry's architecture (exact parameter count)."""
    table = {}
    for key, entry in registry.items():
        a = entry.arch
        table[key] = {
            "params": a.param_count(),
            "context": a.max_position_embeddings,
            "context_extended": DOCUMENTED_CONTEXT_EXTENSIONS.get(key),
            "hidden": a.hidden_size,
            "vocab": a.vocab_size,
            "tied_embeddings": a.tie_word_embeddings,
            "layers": a.num_hidden_layers,
            "kv_heads": a.num_key_value_heads,
            "head_dim": a.head_size,
            "model_type": a.model_type,
            "hf_architecture": a.hf_architecture,
            "rope_theta": a.rope_theta,
        }
    return table


def judge_ledger(measurements: Mapping[C.MeasurementKey, float] | measured.Evidence | None = None,
                 registry: Mapping[str, Any] = REGISTRY):
    """Load claims.yaml and hardware.yaml (keys checked against the registry and the datasheet
    table) and judge every claim. Returns (claims, verdicts by id, arch table, hardware table)."""
    arch = arch_table(registry)
    hardware = C.load_hardware()
    claims = C.load_claims(model_keys=arch, hardware_keys=hardware)
    verdicts = C.judge_all(claims, arch, hardware, measurements)
    return claims, verdicts, arch, hardware


def counts_by_article(claims, verdicts: Mapping[str, C.Verdict],
                      commands: list[dict] | None = None) -> dict[str, dict[str, int]]:
    """article -> {verdict: count} in VERDICTS order (zeros included), articles sorted; with
    `commands` (measured.command_verdicts rows) the articles' command lines count too."""
    per: dict[str, Counter] = {}
    for c in claims:
        per.setdefault(c.article, Counter())[verdicts[c.id].verdict] += 1
    for row in commands or []:
        per.setdefault(row["article"], Counter())[row["verdict"]] += 1
    return {a: {v: per[a].get(v, 0) for v in C.VERDICTS} for a in sorted(per)}


def measurements_from_run(run_dir=None) -> measured.Evidence:
    """What the study measured that the claims are judged by: the run folder's section summaries
    (build/runs/<run_id>/, when given) and every committed snapshot under results/."""
    return measured.collect(run_dir)


SECTIONS_PATH = C.CLAIMS_PATH.parent / "article_sections.yaml"


def load_sections(path=SECTIONS_PATH) -> dict[str, list[dict]]:
    """article -> its sections in order ({section, title, none?, pending?}), data/article_sections.yaml."""
    return C._read_yaml_mapping(path, "articles")


def coverage_rows(claims, verdicts: Mapping[str, C.Verdict], sections: Mapping[str, list[dict]] | None = None,
                  commands: list[dict] | None = None) -> list[dict[str, Any]]:
    """One row per article section: its claims and their verdicts, the command lines run from it
    (`measured.command_verdicts`), or why it has none.

    A claim whose section the file does not list is an error (the table would hide it)."""
    sections = sections if sections is not None else load_sections()
    from ..commands import load_commands

    ran: dict[tuple[str, str], list[dict]] = {}
    for row in commands or []:
        ran.setdefault((row["article"], row["section"]), []).append(row)
    listed_commands = {(c.article, c.section) for c in load_commands()}
    by_section: dict[tuple[str, str], list] = {}
    for c in claims:
        by_section.setdefault((c.article, c.section), []).append(c)
    listed = {(a, s["section"]) for a, secs in sections.items() for s in secs}
    unlisted = sorted(set(by_section) - listed)
    if unlisted:
        raise C.LedgerError(f"{SECTIONS_PATH}: claims name sections it does not list: {unlisted}; add them")
    rows = []
    for article, secs in sections.items():
        for s in secs:
            cs = by_section.get((article, s["section"]), [])
            counts = Counter(verdicts[c.id].verdict for c in cs)
            cmds = ran.get((article, s["section"]), [])
            counts.update(r["verdict"] for r in cmds)
            gaps = []
            if not cmds and (article, s["section"]) in listed_commands:
                gaps.append("a command line (data/commands.yaml), not run in this run")
            if s.get("pending"):
                gaps.append(f"pending: {s['pending']}")
            if s.get("none") and not (cs or cmds):
                gaps.append(f"nothing checkable: {s['none']}")
            rows.append({"article": article, "section": s["section"], "title": s["title"],
                         "claims": len(cs), "commands run": len(cmds),
                         "verdicts": ", ".join(f"{counts[v]} {v}" for v in C.VERDICTS if counts[v]),
                         "not covered": "; ".join(gaps)})
    return rows


def measured_rows(claims, verdicts: Mapping[str, C.Verdict], rules_only: Mapping[str, C.Verdict]
                  ) -> list[dict[str, Any]]:
    """The claims a measurement took part in: the rules' verdict alone beside the final one."""
    out = []
    for c in claims:
        v = verdicts[c.id]
        if v.basis == "measurement" or "measured:" in v.evidence:
            out.append({"id": c.id, "article": c.article, "quote": c.quote, "claimed": C.format_claimed(c),
                        "hardware": c.hardware, "rules alone": rules_only[c.id].verdict,
                        "with measurements": v.verdict, "evidence": v.evidence})
    return out


VERDICT_COLORS = {C.CONSISTENT: "#55a868", C.INCONSISTENT: "#dd8452", C.IMPOSSIBLE: "#c44e52",
                  C.NOT_TESTABLE: "#b0b0b0"}


def verdicts_figure(per_article):
    """Stacked bars: verdict counts per seed article (a DataFrame, articles × verdicts)."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(per_article) + 1.6))
    left = np.zeros(len(per_article))
    for verdict in C.VERDICTS:
        ax.barh(per_article.index, per_article[verdict], left=left, color=VERDICT_COLORS[verdict],
                label=verdict)
        left += per_article[verdict].to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel("claims")
    ax.set_ylabel("article")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Claims ledger: verdict per claim, by seed article")
    return fig


def findings(summary: dict) -> str:
    """The ledger's findings, generated from its summary.json."""
    counts = summary["verdict_counts"]
    out = [f"- {summary['n_claims']} claims: " + ", ".join(f"{counts.get(v, 0)} {v}"
                                                          for v in C.VERDICTS)]
    by_measurement = [r for r in summary["rows"] if r["basis"] == "measurement"]
    changed = [r for r in summary.get("measured", []) if r["rules alone"] != r["with measurements"]]
    out.append(f"- {len(by_measurement)} verdicts rest on this study's measurements "
               f"({len(summary.get('evidence_sources', []))} sources: "
               + ", ".join(s["name"] for s in summary.get("evidence_sources", [])) + "); "
               + (f"the rules alone gave another verdict for {len(changed)}: "
                  + ", ".join(f"{r['id']} ({r['rules alone']} → {r['with measurements']})" for r in changed)
                  if changed else "none differs from the rules alone"))
    published = [r for r in summary["rows"] if r["basis"] == "published"]
    if published:
        out.append(f"- {len(published)} score claims checked against the vendors' published scores: "
                   + ", ".join(f"{r['id']} {r['verdict']}" for r in published))
    cmds = summary.get("commands", [])
    if cmds:
        out.append(f"- {len(cmds)} of the articles' command lines run as written: "
                   + "; ".join(f"{r['id']} {r['outcome']}" + (f" ({r['evidence'][:140]})" if r["outcome"] != "serves"
                                                              else "") for r in cmds))
    impossible = [r for r in summary["rows"] if r["verdict"] == C.IMPOSSIBLE]
    for r in impossible[:5]:
        out.append(f"- **physically impossible** — {r['id']} (article {r['article']}): "
                   f"{r['quote'][:80]} → {r['evidence'][:160]}")
    if len(impossible) > 5:
        out.append(f"- … and {len(impossible) - 5} more physically impossible claims (the ledger "
                   "above lists every one with its arithmetic)")
    worst = max(summary["by_article"].items(),
                key=lambda kv: kv[1].get(C.IMPOSSIBLE, 0) + kv[1].get(C.INCONSISTENT, 0))
    out.append(f"- Most contradicted article: {worst[0]} "
               f"({worst[1].get(C.IMPOSSIBLE, 0)} impossible, "
               f"{worst[1].get(C.INCONSISTENT, 0)} inconsistent)")
    return "\n".join(out)
