"""Claims ledger: the seed articles' quantitative claims, judged by physics, arithmetic and measurement.

`data/claims.yaml` lists every number the five articles state (model sizes, parameter counts,
context lengths, memory, speed, scores), each with the verbatim Chinese quote it comes from.
`data/hardware.yaml` holds vendor datasheet figures for the GPUs/CPUs the articles name.
This module loads and validates both files and gives each claim a verdict:

- "consistent": the arithmetic, the architecture config, the datasheet or a measurement agrees;
- "inconsistent": it disagrees beyond the stated tolerance;
- "physically impossible": it exceeds a hard bound (decode speed above the memory-bandwidth
  roofline; memory smaller than the weights it must hold);
- "not testable here": nothing in this study can check it (the reason is given).

Everything here is pure: no model loading, no network. The architecture table is passed in as a
plain dict (`arch: dict[str, dict]`, model key -> {params, context, hidden, vocab, tied_embeddings,
...}) so that this module does not depend on the model registry.

Units: GB = 1e9 bytes (GiB = 2**30 bytes is shown alongside where articles may mean it);
tokens/s at batch 1.

    vocabulary  verdicts, metrics, units, precisions, tolerances
    model       Claim, Hardware, Verdict; loading data/claims.yaml and data/hardware.yaml
    physics     weights, bytes per token, roofline, KV cache; evidence formatting
    rules       one rule per metric family (physics, arithmetic, datasheets)
    judge       measurements first, then the rules; counts and ledger rows
"""

from .judge import (  # noqa: F401
    compare_with_measurement,
    judge,
    judge_all,
    ledger_rows,
    verdict_counts,
)
from .model import (  # noqa: F401
    CLAIMS_PATH,
    HARDWARE_PATH,
    REQUIRED_CLAIM_KEYS,
    ArchSpec,
    Claim,
    Hardware,
    MeasurementKey,
    Verdict,
    _read_yaml_mapping,
    _validation_message,
    arch_spec,
    load_claims,
    load_hardware,
    measurement_key,
    measurement_metric,
    parse_claim,
)
from .physics import (  # noqa: F401
    bytes_read_per_token,
    embedding_matrix_params,
    format_claimed,
    format_gb,
    format_params,
    format_pct,
    kv_cache_bytes,
    most_compact_precision,
    relative_difference,
    roofline_tok_s,
    weights_bytes,
)
from .rules import (  # noqa: F401
    METRICS_WITHOUT_MODEL,
    NOT_TESTABLE_REASONS,
    RULES,
    RULES_WITHOUT_MODEL,
    _closest_precision,
    _no_model,
    judge_by_physics,
    judge_context,
    judge_context_chars,
    judge_datasheet,
    judge_decode_speed,
    judge_e2e,
    judge_memory,
    judge_params,
    judge_weights_size,
    not_testable_reason,
)
from .vocabulary import (  # noqa: F401
    CONSISTENT,
    CONTEXT_REL_TOL,
    DATASHEET_REL_TOL,
    E2E_REL_TOL,
    IMPOSSIBLE,
    INCONSISTENT,
    MEASUREMENT_REL_TOL,
    MEMORY_IMPOSSIBLE_RATIO,
    MEMORY_METRICS,
    MEMORY_ROUNDING_TOL,
    METRIC_UNITS,
    METRICS,
    NOT_TESTABLE,
    PARAMS_REL_TOL,
    PRECISIONS,
    SCORE_METRICS,
    SIZE_REL_TOL,
    VERDICTS,
    LedgerError,
    PrecisionSpec,
    Relation,
)
