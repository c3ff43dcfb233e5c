"""Architecture replicas: a registered architecture with random weights, for speed and memory only.

Decode speed and memory depend on shapes and dtypes, not on weight values, when the output
length is forced. Replicas never produce quality numbers; every record they produce is labelled
`replica`.

    hf_config_dir(key)        folder with config.json only → transformers `from_config`,
                              vLLM `load_format="dummy"`
    gguf_replica(key, fmt)    GGUF written with gguf-py (F32/F16), quantized with llama.cpp's
                              quantize API for Q4_K_M, Q8_0, Q4_0 …
    onnx_replica(key)         random HF safetensors → onnxruntime-genai model builder (int4)
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .architecture import Architecture
from .artifacts import MANIFEST, build_atomically, build_onnx, is_complete, locked, write_manifest
from .errors import StudyError
from .models import get_model
from .paths import cache_dir
from .provenance import package_versions, sha256_file

GGUF_FLOAT_TYPES = ("F32", "F16")
# llama.cpp file types reachable with llama_model_quantize (name → LLAMA_FTYPE_* attribute)
GGUF_QUANT_TYPES = {"Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
                    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
                    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K"}
GGUF_ARCH = {"llama": "llama", "qwen2": "qwen2", "phi3": "phi3", "mistral": "llama"}


def replica_root(key: str) -> Path:
    return cache_dir() / "replicas" / key


def hf_config_dir(key: str) -> Path:
    """A folder holding only the architecture's config.json (for from_config / dummy loading)."""
    arch = get_model(key).arch
    folder = replica_root(key) / "config"
    with locked(folder):
        if not is_complete(folder):
            def build(tmp: Path):
                (tmp / "config.json").write_text(json.dumps(arch.to_hf_config(), indent=2))
                write_manifest(tmp, "replica-config", None, None,
                                sha256_file(tmp / "config.json"), {"replica": True})
            build_atomically(folder, build)
    return folder


# ---------------------------------------------------------------- GGUF


def _gguf_tensors(arch: Architecture) -> list[tuple[str, tuple[int, ...]]]:
    """(llama.cpp tensor name, numpy shape) for every tensor of the architecture."""
    h, i, hd = arch.hidden_size, arch.intermediate_size, arch.head_size
    q, kv = arch.num_attention_heads * hd, arch.num_key_value_heads * hd
    out = [("token_embd.weight", (arch.vocab_size, h)), ("output_norm.weight", (h,))]
    if not arch.tie_word_embeddings:
        out.append(("output.weight", (arch.vocab_size, h)))
    for b in range(arch.num_hidden_layers):
        p = f"blk.{b}."
        out += [(p + "attn_norm.weight", (h,)), (p + "ffn_norm.weight", (h,))]
        if arch.model_type == "phi3":  # fused qkv and gate/up, as llama.cpp's phi3 loader expects
            out += [(p + "attn_qkv.weight", (q + 2 * kv, h)), (p + "ffn_up.weight", (2 * i, h))]
        else:
            out += [(p + "attn_q.weight", (q, h)), (p + "attn_k.weight", (kv, h)),
                    (p + "attn_v.weight", (kv, h)), (p + "ffn_gate.weight", (i, h)),
                    (p + "ffn_up.weight", (i, h))]
            if arch.attention_bias:
                out += [(p + "attn_q.bias", (q,)), (p + "attn_k.bias", (kv,)),
                        (p + "attn_v.bias", (kv,))]
        out += [(p + "attn_output.weight", (h, q)), (p + "ffn_down.weight", (h, i))]
    return out


def write_gguf_replica(arch: Architecture, path: Path, dtype: str = "F16", seed: int = 0,
                       progress: bool = True) -> int:
    """Stream a random-weight GGUF to `path` tensor by tensor (memory ≈ one tensor). Returns
    the parameter count written."""
    import gguf
    from tqdm import tqdm

    if dtype not in GGUF_FLOAT_TYPES:
        raise StudyError(f"GGUF replica base dtype must be one of {GGUF_FLOAT_TYPES}, got {dtype}")
    np_dtype = np.float16 if dtype == "F16" else np.float32
    name = GGUF_ARCH[arch.model_type]
    w = gguf.GGUFWriter(str(path), name)
    w.add_name(f"replica-{arch.model_type}")
    w.add_context_length(arch.max_position_embeddings)
    w.add_embedding_length(arch.hidden_size)
    w.add_block_count(arch.num_hidden_layers)
    w.add_feed_forward_length(arch.intermediate_size)
    w.add_head_count(arch.num_attention_heads)
    w.add_head_count_kv(arch.num_key_value_heads)
    w.add_rope_freq_base(arch.rope_theta)
    w.add_layer_norm_rms_eps(arch.rms_norm_eps)
    w.add_rope_dimension_count(arch.head_size)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "F16" else gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(arch.vocab_size)
    w.add_tokenizer_model("none")  # no vocabulary: llama.cpp adds dummy tokens; feed token ids
    if arch.model_type == "phi3":
        w.add_uint32(f"{name}.rope.scaling.original_context_length", arch.max_position_embeddings)
    tensors = _gguf_tensors(arch)
    for tname, shape in tensors:
        is_vec = len(shape) == 1
        dt = np.float32 if is_vec else np_dtype  # norms and biases stay F32, as llama.cpp writes them
        nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
        w.add_tensor_info(tname, shape, np.dtype(dt), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    n_params = 0
    for tname, shape in tqdm(tensors, desc=f"GGUF replica {dtype}", disable=not progress,
                             unit="tensor", leave=False):
        if tname.endswith("norm.weight"):
            arr = np.ones(shape, dtype=np.float32)
        elif len(shape) == 1:
            arr = np.zeros(shape, dtype=np.float32)
        else:
            arr = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np_dtype)
        n_params += arr.size
        w.write_tensor_data(arr)
    w.close()
    return n_params


def quantize_gguf(src: Path, dst: Path, qtype: str, threads: int | None = None) -> None:
    """Quantize a GGUF with llama.cpp's own quantizer (llama-cpp-python's C API)."""
    import llama_cpp

    if qtype not in GGUF_QUANT_TYPES:
        raise StudyError(f"unsupported GGUF quantization {qtype!r}; choose from "
                         f"{', '.join(GGUF_QUANT_TYPES)} (or {', '.join(GGUF_FLOAT_TYPES)})")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, GGUF_QUANT_TYPES[qtype])
    params.nthread = threads or os.cpu_count()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(),
                                        ctypes.byref(params))
    if rc != 0:
        raise StudyError(f"llama_model_quantize({src.name} → {qtype}) failed with code {rc}")


def gguf_replica(key: str, fmt: str = "F16", seed: int = 0, progress: bool = True) -> Path:
    """A llama.cpp-loadable random-weight GGUF of a registered architecture (cached)."""
    fmt = fmt.upper()
    arch = get_model(key).arch
    folder = replica_root(key) / f"gguf-{fmt}"
    target = folder / "model.gguf"
    base_fmt = fmt if fmt in GGUF_FLOAT_TYPES else "F16"
    if fmt not in GGUF_FLOAT_TYPES and fmt not in GGUF_QUANT_TYPES:
        raise StudyError(f"unknown GGUF format {fmt!r}; choose from "
                         f"{', '.join(GGUF_FLOAT_TYPES + tuple(GGUF_QUANT_TYPES))}")
    with locked(folder):
        if is_complete(folder):
            return target
        if fmt in GGUF_FLOAT_TYPES:
            def build(tmp: Path):
                n = write_gguf_replica(arch, tmp / "model.gguf", fmt, seed, progress)
                write_manifest(tmp, f"replica-gguf-{fmt}", None, None,
                                sha256_file(tmp / "model.gguf"),
                                {**package_versions(("gguf",)), "replica": True, "params": n,
                                 "seed": seed})
        else:
            base = gguf_replica(key, base_fmt, seed, progress)
            def build(tmp: Path):
                quantize_gguf(base, tmp / "model.gguf", fmt)
                write_manifest(tmp, f"replica-gguf-{fmt}", base, None,
                                sha256_file(tmp / "model.gguf"),
                                {**package_versions(("llama-cpp-python",)), "replica": True,
                                 "seed": seed})
        build_atomically(folder, build)
    return target


# ---------------------------------------------------------------- ONNX


def onnx_replica(key: str, precision: str = "int4", seed: int = 0) -> Path:
    """Random HF safetensors of the architecture → onnxruntime-genai builder (cached)."""

    folder = replica_root(key) / f"onnx-{precision}-cpu"
    hf = replica_root(key) / "hf-random"
    with locked(hf):
        if not is_complete(hf):
            def build(tmp: Path):
                import torch
                from transformers import AutoConfig, AutoModelForCausalLM

                torch.manual_seed(seed)
                cfg = AutoConfig.from_pretrained(hf_config_dir(key))
                model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
                model.save_pretrained(tmp, safe_serialization=True)
                # The builder writes tokenizer files next to the model; any tokenizer will do for a
                # replica, which is fed token ids and never decoded.
                from .forms import HF

                emb = HF.embedded()
                for f in emb.iterdir():
                    if f.name.startswith(("tokenizer", "special_tokens")):
                        shutil.copy(f, tmp / f.name)
                write_manifest(tmp, "replica-hf-random", None, None, "random",
                                {**package_versions(("transformers", "torch")), "replica": True,
                                 "seed": seed})
            build_atomically(hf, build)
    return build_onnx(hf, folder, precision=precision)


__all__ = ["hf_config_dir", "gguf_replica", "onnx_replica", "write_gguf_replica",
           "quantize_gguf", "MANIFEST"]
