"""Decoder architecture: the shape that sets parameter count, bytes read per token and replicas.

Read from a checkpoint's config.json (:func:`arch_from_config`), from GGUF metadata
(:func:`slmstudy.gguf_meta.architecture`), or copied into the model registry (:mod:`slmstudy.models`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import StudyError


@dataclass(frozen=True)
class Architecture:
    """Transformer decoder shape, as in the checkpoint's config.json."""

    model_type: str  # HF model_type: llama, qwen2, phi3, mistral
    hf_architecture: str  # e.g. Qwen2ForCausalLM
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool
    attention_bias: bool = False  # Qwen2 has q/k/v biases
    head_dim: int | None = None
    torch_dtype: str = "bfloat16"
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    extra: dict = field(default_factory=dict)  # other config.json keys, copied verbatim

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def param_count(self) -> int:
        """Exact parameter count of the architecture (tied embeddings counted once)."""
        h, i, L = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        q = self.num_attention_heads * self.head_size
        kv = self.num_key_value_heads * self.head_size
        attn = h * q + 2 * h * kv + q * h
        if self.attention_bias:
            attn += q + 2 * kv
        mlp = 3 * h * i
        norms = 2 * h
        per_layer = attn + mlp + norms
        embed = self.vocab_size * h
        lm_head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return L * per_layer + embed + lm_head + h  # + final norm

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def params_read_per_token(self) -> int:
        """Weights a batch-1 decode step reads: all but the input-embedding table.

        With untied embeddings the input table is only indexed (one row per token); with tied
        embeddings the shared matrix is read in full once, as the output layer.
        """
        total = self.param_count()
        return total if self.tie_word_embeddings else total - self.embedding_params()

    def kv_bytes_per_token(self, bytes_per_elem: int = 2) -> int:
        return 2 * self.num_hidden_layers * self.num_key_value_heads * self.head_size * bytes_per_elem

    def to_hf_config(self) -> dict:
        """A config.json dict that transformers, vLLM and the ONNX builder accept."""
        cfg = {
            "architectures": [self.hf_architecture],
            "model_type": self.model_type,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
            "torch_dtype": self.torch_dtype,
            "use_cache": True,
        }
        if self.head_dim:
            cfg["head_dim"] = self.head_dim
        if self.bos_token_id is not None:
            cfg["bos_token_id"] = self.bos_token_id
        if self.eos_token_id is not None:
            cfg["eos_token_id"] = self.eos_token_id
        if self.model_type == "llama":
            cfg["attention_bias"] = self.attention_bias
        cfg.update(self.extra)
        return cfg


_ARCH_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "vocab_size", "max_position_embeddings", "rms_norm_eps")


def arch_from_config(cfg: dict) -> Architecture:
    """Architecture from a config.json dict (text config of multimodal configs included)."""
    cfg = cfg.get("text_config", cfg)
    missing = [k for k in _ARCH_KEYS if k not in cfg]
    if missing:
        raise StudyError(f"config.json lacks {missing}; is this a decoder-only LLM folder?")
    return Architecture(
        model_type=cfg.get("model_type", "llama"),
        hf_architecture=(cfg.get("architectures") or ["LlamaForCausalLM"])[0],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
        vocab_size=cfg["vocab_size"],
        max_position_embeddings=cfg["max_position_embeddings"],
        rope_theta=float(cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))),
        rms_norm_eps=cfg["rms_norm_eps"],
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        attention_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
        head_dim=cfg.get("head_dim"),
        torch_dtype=str(cfg.get("torch_dtype", cfg.get("dtype", "bfloat16"))),
    )
