"""Bytes held and read per decode step for vLLM's quantized formats (the roofline denominator).

The HF form counts every parameter at the target's dtype; a quantized engine stores the linear
layers' weights in fewer bytes and leaves the rest (embedding table, output layer, norms, biases)
at 16 bits. Counted the same way as every other row of the study (bytes read per token = all
weights but the input-embedding table, :meth:`Architecture.params_read_per_token`):

    awq   4-bit weights packed in int32, one 16-bit scale and one 4-bit zero point per group of
          `group_size` input channels (AutoAWQ's GEMM layout, which vLLM's AWQ-Marlin kernel
          repacks without changing its size); `lm_head` stays 16-bit, as AutoAWQ writes it
    fp8   one byte per linear weight and one float32 scale per tensor (vLLM's online
          `--quantization fp8`: per-tensor weight scales, output layer left in 16 bits)
"""

from __future__ import annotations

import dataclasses

from ..architecture import Architecture
from ..errors import StudyError
from ..forms import DTYPE_BYTES

# quantization methods whose bytes this module knows (vLLM's --quantization names)
METHODS = ("awq", "fp8")


def linear_weight_params(arch: Architecture) -> int:
    """Parameters of the decoder layers' linear weights (q, k, v, o, gate, up, down)."""
    h, i = arch.hidden_size, arch.intermediate_size
    q = arch.num_attention_heads * arch.head_size
    kv = arch.num_key_value_heads * arch.head_size
    return arch.num_hidden_layers * (h * q + 2 * h * kv + q * h + 3 * h * i)


def linear_weight_count(arch: Architecture) -> int:
    """Number of linear weight matrices (per-tensor scales are one per matrix)."""
    return arch.num_hidden_layers * 7


def quantized_bytes(arch: Architecture, method: str, dtype: str = "bfloat16",
                    group_size: int = 128) -> tuple[int, int]:
    """(bytes of weights held, bytes read per decode step) of `arch` under vLLM's `method`."""
    if method not in METHODS:
        raise StudyError(f"quantization {method!r}: bytes known for {', '.join(METHODS)} only; "
                         "add the format to slmstudy.speed.quantized or leave the roofline out")
    if dtype not in DTYPE_BYTES:
        raise StudyError(f"dtype must be one of {list(DTYPE_BYTES)}, not {dtype!r}")
    b16 = DTYPE_BYTES[dtype]
    lin = linear_weight_params(arch)
    rest = arch.param_count() - lin  # embeddings, output layer, norms, biases: 16-bit
    if method == "awq":
        groups = lin // group_size
        lin_bytes = lin // 2 + groups * b16 + groups // 2  # int4 weights, 16-bit scales, int4 zeros
    else:
        lin_bytes = lin + 4 * linear_weight_count(arch)
    held = lin_bytes + rest * b16
    skipped = 0 if arch.tie_word_embeddings else arch.embedding_params() * b16
    return held, held - skipped


def with_quantized_sizes(target):
    """The target with held / read bytes of its vLLM quantization (`options.quantization`),
    or the target unchanged when it has none."""
    method = (target.spec.options or {}).get("quantization")
    if not method:
        return target
    from ..models import get_model

    cfg = (target.spec.options or {}).get("config_overrides") or {}
    group = (cfg.get("quantization_config") or {}).get("group_size", 128)
    arch = get_model(target.spec.model).arch if target.spec.replica else None
    if arch is None:
        import json

        from ..architecture import arch_from_config

        arch = arch_from_config(json.loads((target.path / "config.json").read_text()))
    held, read = quantized_bytes(arch, method, target.spec.dtype, group)
    return dataclasses.replace(target, weights_bytes=held, bytes_read_per_token=read)
