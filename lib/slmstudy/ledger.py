"""The claims ledger wired to the model registry: the `arch` table `slmstudy.claims` expects,
judged verdicts, and the tables the claims notebook and the report show.

`claims.py` stays pure (it takes the architecture as a plain dict); this module builds that
dict from `models.REGISTRY`, so a model added to the registry is judged with no other change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from . import claims as C
from .models import REGISTRY

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
        }
    return table


def judge_ledger(measurements: Mapping[C.MeasurementKey, float] | None = None,
                 registry: Mapping[str, Any] = REGISTRY):
    """Load claims.yaml and hardware.yaml (keys checked against the registry and the datasheet
    table) and judge every claim. Returns (claims, verdicts by id, arch table, hardware table)."""
    arch = arch_table(registry)
    hardware = C.load_hardware()
    claims = C.load_claims(model_keys=arch, hardware_keys=hardware)
    verdicts = C.judge_all(claims, arch, hardware, measurements)
    return claims, verdicts, arch, hardware


def counts_by_article(claims, verdicts: Mapping[str, C.Verdict]) -> dict[str, dict[str, int]]:
    """article -> {verdict: count} in VERDICTS order (zeros included), articles sorted."""
    per: dict[str, Counter] = {}
    for c in claims:
        per.setdefault(c.article, Counter())[verdicts[c.id].verdict] += 1
    return {a: {v: per[a].get(v, 0) for v in C.VERDICTS} for a in sorted(per)}


def measurements_from_run(run_dir) -> dict[C.MeasurementKey, float]:
    """Measurements of one run keyed as the claims are (model, metric, precision, hardware).

    None are comparable yet: the claims name the articles' GPUs/CPUs, and a run measures the
    machine it runs on, which `hardware.yaml` does not key. Returns an empty table until a run's
    hardware can be matched to a hardware key (e.g. an H100 snapshot).
    """
    return {}
