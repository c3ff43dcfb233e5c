"""Artifact forms: what an engine loads — an HF safetensors folder, a GGUF file, an ONNX folder.

A form knows, for its kind of file: where the embedded model's copy is (derived once into the
cache by :func:`slmstudy.artifacts.prepare`), where a replica of a registered architecture is
(:mod:`slmstudy.replicas`), whether a user's local path is of this form (and what is missing if
not), how many bytes its weights hold and how many a decode step reads (the roofline
denominator), and where its Hugging Face tokenizer is, if it carries one. Engines name their form
in the registry (:mod:`slmstudy.backends.registry`); an engine with a new form defines it in its
own module.
"""

from __future__ import annotations

import json
from pathlib import Path

from .architecture import Architecture, arch_from_config
from .errors import ModelNotFoundError, StudyError

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class ArtifactForm:
    """One kind of model file. `precision_field`: which target field names its precision in
    labels ("dtype" for float checkpoints, "format" for quantized files)."""

    name: str = "?"
    precision_field: str = "format"

    def embedded(self, key: str | None = None) -> Path:
        """A bundled model (default: the embedded one) in this form (derived on first use)."""
        raise NotImplementedError

    def replica(self, key: str, fmt: str) -> Path:
        """Random weights of registered architecture `key` in this form (cached)."""
        raise NotImplementedError

    def check_local(self, path: Path, engine: str) -> None:
        """Raise naming the file and what is missing if `path` is not of this form."""

    def sizes(self, path: Path, dtype: str, arch: Architecture | None = None) -> tuple[int, int]:
        """(bytes of weights held, bytes read per decode step)."""
        raise NotImplementedError

    def replica_bytes_per_param(self, dtype: str) -> float:
        """Bytes per parameter of a replica, for the memory preflight (before anything exists)."""
        return 0.6

    def tokenizer_dir(self, path: Path) -> Path | None:
        """The HF tokenizer folder that comes with these weights, if any."""
        return None


def _dtype_bytes(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise StudyError(f"dtype must be one of {list(DTYPE_BYTES)}, not {dtype!r}")
    return DTYPE_BYTES[dtype]


class HFForm(ArtifactForm):
    """A Hugging Face folder (config.json + safetensors); for replicas, config.json alone."""

    name = "hf"
    precision_field = "dtype"

    def embedded(self, key: str | None = None) -> Path:
        from .artifacts import prepare
        from .models import EMBEDDED_KEY

        return prepare(key or EMBEDDED_KEY, formats=("hf",), progress=False).hf

    def replica(self, key: str, fmt: str) -> Path:
        from .replicas import hf_config_dir

        return hf_config_dir(key)

    def check_local(self, path: Path, engine: str) -> None:
        if path.suffix == ".gguf":
            raise StudyError(f"{path.name} is a GGUF file: {engine} needs an HF model folder "
                             "(config.json + *.safetensors); give the folder, or use an engine "
                             "that loads GGUF")
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} has no config.json; {engine} needs an HF model "
                                     "folder (config.json + *.safetensors)")

    def sizes(self, path: Path, dtype: str, arch: Architecture | None = None) -> tuple[int, int]:
        arch = arch or arch_from_config(json.loads((path / "config.json").read_text()))
        b = _dtype_bytes(dtype)
        return arch.param_count() * b, arch.params_read_per_token() * b

    def replica_bytes_per_param(self, dtype: str) -> float:
        return _dtype_bytes(dtype)

    def tokenizer_dir(self, path: Path) -> Path | None:
        has = (path / "tokenizer.json").is_file() or (path / "tokenizer.model").is_file()
        return path if has else None


class GGUFForm(ArtifactForm):
    """One .gguf file (llama.cpp); a folder holding one is accepted too."""

    name = "gguf"

    def embedded(self, key: str | None = None) -> Path:
        from .artifacts import prepare
        from .models import EMBEDDED_KEY

        return prepare(key or EMBEDDED_KEY, formats=(), progress=False).gguf

    def replica(self, key: str, fmt: str) -> Path:
        from .replicas import gguf_replica

        return gguf_replica(key, fmt)

    def check_local(self, path: Path, engine: str) -> None:
        from .gguf_meta import check_gguf

        if path.is_dir():
            raise StudyError(f"{path} is a folder: {engine} needs a .gguf file")
        check_gguf(path)

    def sizes(self, path: Path, dtype: str, arch: Architecture | None = None) -> tuple[int, int]:
        from .gguf_meta import tensor_bytes

        return tensor_bytes(path)

    def tokenizer_dir(self, path: Path) -> Path | None:
        """A GGUF carries its vocabulary and chat template: an HF tokenizer made from them."""
        from .artifacts import gguf_tokenizer

        return gguf_tokenizer(path if path.suffix == ".gguf" else next(path.glob("*.gguf")))


class ONNXForm(ArtifactForm):
    """An onnxruntime-genai folder (genai_config.json + model.onnx[.data]) from its builder."""

    name = "onnx"

    def embedded(self, key: str | None = None) -> Path:
        from .artifacts import prepare
        from .models import EMBEDDED_KEY

        return prepare(key or EMBEDDED_KEY, formats=("onnx",), progress=False).onnx

    def replica(self, key: str, fmt: str) -> Path:
        from .replicas import onnx_replica

        return onnx_replica(key, fmt.lower() if fmt != "hf" else "int4")

    def check_local(self, path: Path, engine: str) -> None:
        if not (path / "genai_config.json").is_file():
            raise ModelNotFoundError(f"{engine} needs a folder with genai_config.json (made by "
                                     f"onnxruntime-genai's model builder); {path} has none")

    def sizes(self, path: Path, dtype: str, arch: Architecture | None = None) -> tuple[int, int]:
        data = sum(f.stat().st_size for f in path.glob("*.onnx*"))
        # an untied fp32 embedding table is read one row per token, not whole
        emb = 0 if arch is None or arch.tie_word_embeddings else arch.embedding_params() * 4
        return data, max(data - emb, 1)


HF, GGUF, ONNX = HFForm(), GGUFForm(), ONNXForm()
