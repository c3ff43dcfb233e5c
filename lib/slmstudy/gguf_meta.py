"""GGUF metadata, read once here: validity, key/value fields, architecture, tensor bytes.

Everything the study needs to know about a GGUF file without loading it into an engine
(gguf-py's reader, the same one llama.cpp's Python tools use).
"""

from __future__ import annotations

import os
from pathlib import Path

from .architecture import Architecture
from .errors import CorruptModelError, ModelNotFoundError, StudyError


def check_gguf(path: str | os.PathLike):
    """Open a GGUF with gguf-py's reader; a clear error when it is missing or corrupt."""
    p = Path(path)
    if not p.is_file():
        raise ModelNotFoundError(
            f"GGUF file not found at {p}; check the path (models.<name>.path in params) or use "
            "the embedded default model."
        )
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise CorruptModelError(
            f"{p} is not a GGUF file (first bytes {magic!r}, expected b'GGUF'); the file is corrupt "
            "or of another format. Re-download or re-export it (e.g. llama.cpp's "
            "convert_hf_to_gguf.py)."
        )
    from gguf import GGUFReader

    try:
        return GGUFReader(str(p))
    except Exception as e:  # gguf raises ValueError/IndexError/struct errors on truncation
        raise CorruptModelError(
            f"{p} starts like a GGUF but cannot be parsed ({type(e).__name__}: {e}); it is "
            "truncated or corrupt. Re-download or re-export it."
        ) from e


def field(reader, key: str, default=None):
    """One metadata value: str for strings, a Python scalar otherwise, `default` if absent."""
    f = reader.fields.get(key)
    if f is None or not f.data:
        return default
    val = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(val).decode("utf-8")
    return val.tolist()[0] if hasattr(val, "tolist") else val


def has_vocabulary(path: str | os.PathLike) -> bool:
    """False for a GGUF written without a tokenizer (a replica: fed token ids, never text)."""
    return field(check_gguf(path), "tokenizer.ggml.model") not in (None, "none")


_GGUF_TO_HF = {"llama": ("llama", "LlamaForCausalLM"), "qwen2": ("qwen2", "Qwen2ForCausalLM"),
               "phi3": ("phi3", "Phi3ForCausalLM"), "mistral": ("mistral", "MistralForCausalLM"),
               "gemma3": ("gemma3_text", "Gemma3ForCausalLM")}


def architecture(path: str | os.PathLike) -> Architecture:
    """Architecture from GGUF metadata (llama.cpp key names)."""
    r = check_gguf(path)
    arch = field(r, "general.architecture")
    if arch not in _GGUF_TO_HF:
        raise StudyError(f"GGUF architecture {arch!r} is not supported here; supported: "
                         f"{', '.join(_GGUF_TO_HF)}")
    mt, hf_arch = _GGUF_TO_HF[arch]
    tokens = r.fields.get("tokenizer.ggml.tokens")
    vocab = field(r, f"{arch}.vocab_size") or (len(tokens.data) if tokens else None)
    heads = int(field(r, f"{arch}.attention.head_count"))
    hidden = int(field(r, f"{arch}.embedding_length"))
    key_length = field(r, f"{arch}.attention.key_length")  # Gemma: 256, not hidden / heads
    return Architecture(
        model_type=mt, hf_architecture=hf_arch,
        hidden_size=hidden,
        intermediate_size=int(field(r, f"{arch}.feed_forward_length")),
        num_hidden_layers=int(field(r, f"{arch}.block_count")),
        num_attention_heads=heads,
        num_key_value_heads=int(field(r, f"{arch}.attention.head_count_kv", heads)),
        vocab_size=int(vocab),
        max_position_embeddings=int(field(r, f"{arch}.context_length")),
        rope_theta=float(field(r, f"{arch}.rope.freq_base", 10000.0)),
        rms_norm_eps=float(field(r, f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        tie_word_embeddings=not any(t.name == "output.weight" for t in r.tensors),
        attention_bias=any(t.name.endswith("attn_q.bias") for t in r.tensors),
        head_dim=int(key_length) if key_length and int(key_length) != hidden // heads else None,
    )


def tensor_bytes(path: str | os.PathLike) -> tuple[int, int]:
    """(all tensor bytes, bytes read per decode step) of a GGUF. A decode step reads every
    tensor but the token embedding, of which it reads one row — unless the embedding is tied
    to the output head (no `output.weight`), when the whole matrix is read as the head."""
    r = check_gguf(path)
    sizes = {t.name: int(t.n_bytes) for t in r.tensors}
    total = sum(sizes.values())
    read = total - sizes.get("token_embd.weight", 0) if "output.weight" in sizes else total
    return total, read
