"""Physics and arithmetic the rules use (weights, bytes read per token, roofline, KV cache), and evidence formatting."""

from __future__ import annotations

from typing import Callable

from .model import ArchSpec, Claim
from .vocabulary import PRECISIONS

# ---------------------------------------------------------------------------------------------
# Physics and arithmetic
# ---------------------------------------------------------------------------------------------


def embedding_matrix_params(spec: ArchSpec) -> int:
    """Parameters in the embedding/output matrices: vocab x hidden, twice unless tied."""
    return spec.embedding_params * (1 if spec.tied_embeddings else 2)


def weights_bytes(spec: ArchSpec, precision: str) -> float:
    """Bytes of all stored weights: (params - E) x bits/8 + E x embedding_bits/8.

    E = embedding_matrix_params; embedding_bits = bits_per_weight unless the format keeps
    embeddings unquantized (AWQ, NF4).
    """
    p = PRECISIONS[precision]
    e = embedding_matrix_params(spec)
    emb_bits = p.embedding_bits if p.embedding_bits is not None else p.bits_per_weight
    return ((spec.params - e) * p.bits_per_weight + e * emb_bits) / 8


def bytes_read_per_token(spec: ArchSpec, precision: str) -> float:
    """Bytes of weights one batch-1 decode step reads.

    Every weight is read once except the input-embedding table, of which only one row
    (negligible, not counted) is read. Untied: all weights minus one vocab x hidden matrix;
    tied: the shared matrix is read once, as the output layer, so all weights count.
    = (params - E) x bits/8 + vocab x hidden x embedding_bits/8.
    """
    p = PRECISIONS[precision]
    e = embedding_matrix_params(spec)
    emb_bits = p.embedding_bits if p.embedding_bits is not None else p.bits_per_weight
    return ((spec.params - e) * p.bits_per_weight + spec.embedding_params * emb_bits) / 8


def roofline_tok_s(bandwidth_gb_s: float, bytes_per_token: float) -> float:
    """Upper bound on batch-1 decode speed: memory bandwidth / bytes read per token."""
    return bandwidth_gb_s * 1e9 / bytes_per_token


def kv_cache_bytes(spec: ArchSpec, tokens: int, bytes_per_element: float = 2.0) -> float | None:
    """KV cache of one sequence: 2 (K and V) x layers x kv_heads x head_dim x bytes x tokens.

    None when the architecture entry lacks layers/kv_heads/head_dim. fp16 cache by default.
    """
    if spec.layers is None or spec.kv_heads is None or spec.head_dim is None:
        return None
    return 2 * spec.layers * spec.kv_heads * spec.head_dim * bytes_per_element * tokens


def most_compact_precision(spec: ArchSpec, size: Callable[[ArchSpec, str], float]) -> str:
    """The known format with the fewest bytes by `size` (weights_bytes or bytes_read_per_token).

    Used when an article does not state the precision: the most permissive assumption.
    """
    return min(PRECISIONS, key=lambda name: size(spec, name))


def relative_difference(claimed: float, reference: float) -> float:
    """(claimed - reference) / reference."""
    return (claimed - reference) / reference


# ---------------------------------------------------------------------------------------------
# Formatting helpers for evidence strings
# ---------------------------------------------------------------------------------------------


def format_gb(n_bytes: float) -> str:
    """'15.23 GB (14.18 GiB)'."""
    return f"{n_bytes / 1e9:.2f} GB ({n_bytes / 2**30:.2f} GiB)"


def format_params(n: float) -> str:
    return f"{n / 1e9:.3g}B"


def format_claimed(claim: Claim) -> str:
    """The claimed value as the article bounds it, e.g. '>100 tok/s', '~28 GB'."""
    rel = "" if claim.relation == "=" else claim.relation
    value = f"{claim.value:g}" + (f"-{claim.value_high:g}" if claim.value_high is not None else "")
    return f"{rel}{value} {claim.unit}"


def format_pct(x: float) -> str:
    return f"{x * 100:+.0f}%"
