"""Artifact pipeline: from one GGUF derive, once, the forms each engine loads.

    <cache>/<model>/gguf/model.gguf       the GGUF itself (copied, hash-checked)
    <cache>/<model>/hf/                   HF safetensors folder (dequantized by transformers)
    <cache>/<model>/onnx-int4-cpu/        onnxruntime-genai int4 folder (its model builder)

Each folder holds `artifact.json` (sha256, source sha256, tool versions, size on disk). A folder
is built under a temporary name and renamed into place only when complete, and builds take a
file lock, so an interrupted or concurrent run never leaves a half-written artifact that looks
finished. `SLMSTUDY_CACHE` moves the cache (default: build/cache in the repo).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptModelError, StudyError
from .gguf_meta import check_gguf
from .models import EMBEDDED_KEY, embedded_gguf_path
from .paths import cache_dir
from .provenance import package_versions, sha256_file

MANIFEST = "artifact.json"
FORMATS = ("gguf", "hf", "onnx")


@dataclass(frozen=True)
class ModelArtifacts:
    """Paths of one model's derived forms, each with its manifest."""

    key: str
    gguf: Path
    hf: Path
    onnx: Path

    def manifests(self) -> dict[str, dict]:
        out = {}
        for name, p in (("gguf", self.gguf.parent), ("hf", self.hf), ("onnx", self.onnx)):
            m = p / MANIFEST
            if m.is_file():
                out[name] = json.loads(m.read_text())
        return out


# ---------------------------------------------------------------- build helpers


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def dir_sha256(path: Path) -> str:
    """sha256 over (relative name, file sha256) of every file but the manifest, sorted."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


@contextlib.contextmanager
def locked(target: Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def is_complete(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def write_manifest(folder: Path, kind: str, source: Path | None, source_sha: str | None,
                    sha: str, tools: dict) -> dict:
    manifest = {
        "kind": kind,
        "sha256": sha,
        "source": str(source) if source else None,
        "source_sha256": source_sha,
        "size_bytes": dir_size(folder),
        "tools": tools,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def build_atomically(final: Path, build_fn) -> None:
    """Run build_fn(tmp_dir) then rename tmp_dir → final. Stale temp dirs are removed first."""
    for stale in final.parent.glob(f"{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists() and not is_complete(final):
        shutil.rmtree(final)  # half-written by a run that died before the rename existed
    tmp = final.parent / f"{final.name}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        build_fn(tmp)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------- the three forms


def build_gguf(src: Path, folder: Path) -> Path:
    """Copy the source GGUF into the cache with a manifest (source hash checked after copy)."""
    target = folder / "model.gguf"
    with locked(folder):
        if is_complete(folder):
            return target
        check_gguf(src)
        src_sha = sha256_file(src)

        def build(tmp: Path):
            shutil.copyfile(src, tmp / "model.gguf")
            sha = sha256_file(tmp / "model.gguf")
            if sha != src_sha:
                raise CorruptModelError(f"copy of {src} changed while copying; retry")
            write_manifest(tmp, "gguf", src, src_sha, sha, package_versions(("gguf",)))

        build_atomically(folder, build)
    return target


def gguf_adds_bos(path: Path) -> bool:
    """Does the GGUF's tokenizer prepend BOS (`tokenizer.ggml.add_bos_token`)?"""
    import gguf

    field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.add_bos_token")
    return bool(field.contents()) if field is not None else False


def tokenizer_from_gguf(gguf_file: Path):
    """transformers' tokenizer of a GGUF. Its conversion drops `tokenizer.ggml.add_bos_token`
    (Gemma's GGUF says True; its HF tokenizer adds <bos>, llama.cpp adds it): passed on here."""
    from transformers import AutoTokenizer

    kw = {"add_bos_token": True} if gguf_adds_bos(gguf_file) else {}
    return AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, **kw)


def carried_tokenizer(gguf_sha256: str) -> Path | None:
    """`$SLMSTUDY_TOKENIZERS/<sha256[:16]>/`: tokenizer files another machine made from the GGUF
    with this sha256, used as they are. A tokenizer made from a GGUF depends on the transformers
    version: on the H200 (transformers 5.17) Gemma 3's encoded about one token per character,
    where 5.19 here gives about four characters per token (results/h200-2026-12-03-quality).
    Carrying the files makes both machines encode the same ids."""
    root = os.environ.get("SLMSTUDY_TOKENIZERS")
    if not root:
        return None
    folder = Path(root).expanduser() / gguf_sha256[:16]
    if not (folder / "tokenizer_config.json").is_file():
        raise StudyError(f"SLMSTUDY_TOKENIZERS is set but {folder} has no tokenizer_config.json: "
                         "carry the tokenizer files made from this GGUF "
                         "(scripts/gpu/pack_quality.sh), or unset SLMSTUDY_TOKENIZERS")
    return folder


def build_hf(gguf_file: Path, folder: Path, dtype: str = "float32") -> Path:
    """Dequantize a GGUF into an HF safetensors folder with transformers' GGUF loader."""
    with locked(folder):
        if is_complete(folder):
            return folder

        src_sha = sha256_file(gguf_file)
        carried = carried_tokenizer(src_sha)

        def build(tmp: Path):
            import torch
            from transformers import AutoModelForCausalLM

            tok = None if carried else tokenizer_from_gguf(gguf_file)
            model = AutoModelForCausalLM.from_pretrained(
                gguf_file.parent, gguf_file=gguf_file.name, dtype=getattr(torch, dtype))
            # GGUF weights arrive dequantized; drop the GGUF quantizer marker so the folder is a
            # plain safetensors checkpoint that every engine loads.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            if carried:  # the tokenizer files made from this GGUF on another machine, as they are
                for f in carried.iterdir():
                    if f.is_file():
                        shutil.copy2(f, tmp / f.name)
            else:
                tok.save_pretrained(tmp)
            gen_cfg = tmp / "generation_config.json"
            if gen_cfg.is_file():  # greedy by default; the study sets sampling explicitly
                cfg = json.loads(gen_cfg.read_text())
                for k in ("temperature", "top_p", "top_k", "do_sample"):
                    cfg.pop(k, None)
                gen_cfg.write_text(json.dumps(cfg, indent=2))
            write_manifest(tmp, "hf-safetensors", gguf_file, src_sha, dir_sha256(tmp),
                           {**package_versions(("transformers", "torch", "gguf")), "dtype": dtype,
                            "tokenizer": str(carried) if carried else "made from the GGUF here"})

        build_atomically(folder, build)
    return folder


def gguf_tokenizer(gguf_file: Path) -> Path:
    """An HF tokenizer folder made from a GGUF's own vocabulary and chat template (for a user's
    GGUF with no HF folder beside it), built once per file content into
    `<cache>/_tokenizers/<sha256[:16]>/` (about 50 s for Gemma's 262k vocabulary)."""
    gguf_file = Path(gguf_file)
    check_gguf(gguf_file)
    sha = sha256_file(gguf_file)
    folder = cache_dir() / "_tokenizers" / sha[:16]
    with locked(folder):
        if is_complete(folder):
            return folder

        def build(tmp: Path):

            try:
                tok = tokenizer_from_gguf(gguf_file)
            except Exception as e:
                raise StudyError(
                    f"cannot make a tokenizer from {gguf_file}: {type(e).__name__}: {e}. Set "
                    "`tokenizer` in the target to the model's HF folder (tokenizer.json and its "
                    "chat template).") from None
            tok.save_pretrained(tmp)
            write_manifest(tmp, "hf-tokenizer-from-gguf", gguf_file, sha, dir_sha256(tmp),
                           package_versions(("transformers", "gguf")))

        build_atomically(folder, build)
    return folder


def build_onnx(hf_folder: Path, folder: Path, precision: str = "int4",
               execution_provider: str = "cpu", log=None) -> Path:
    """Run onnxruntime-genai's model builder on an HF folder (int4 for CPU by default)."""
    with locked(folder):
        if is_complete(folder):
            return folder

        def build(tmp: Path):
            work = tmp.parent / f".{tmp.name}-work"
            shutil.rmtree(work, ignore_errors=True)
            cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_folder),
                   "-o", str(tmp), "-p", precision, "-e", execution_provider, "-c", str(work)]
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            shutil.rmtree(work, ignore_errors=True)
            (tmp.parent / f"{folder.name}.builder.log").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise StudyError(
                    f"onnxruntime-genai model builder failed (exit {proc.returncode}) on "
                    f"{hf_folder}; last output:\n{(proc.stdout + proc.stderr)[-2000:]}")
            src_manifest = json.loads((hf_folder / MANIFEST).read_text()) \
                if (hf_folder / MANIFEST).is_file() else {}
            write_manifest(tmp, f"onnx-{precision}-{execution_provider}", hf_folder,
                            src_manifest.get("sha256"), dir_sha256(tmp),
                            package_versions(("onnxruntime-genai", "onnxruntime", "onnx")))

        build_atomically(folder, build)
    return folder


def prepare(key: str = EMBEDDED_KEY, gguf_source: str | os.PathLike | None = None,
            formats=FORMATS, progress: bool = True) -> ModelArtifacts:
    """Derive (once) the forms of a GGUF model into the cache; returns their paths.

    `gguf_source` defaults to the bundled model's GGUF (SmolLM2's inside its package; Gemma 3
    270M's assembled by its package, removed once copied in). Idempotent: completed artifacts
    are reused; a rerun after an interruption rebuilds only what is missing.
    """
    from tqdm import tqdm

    root = cache_dir() / key
    arts = ModelArtifacts(key=key, gguf=root / "gguf" / "model.gguf", hf=root / "hf",
                          onnx=root / "onnx-int4-cpu")
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise StudyError(f"unknown artifact formats {sorted(unknown)}; choose from {FORMATS}")
    steps = ["gguf"] + [f for f in ("hf", "onnx") if f in formats]
    if "onnx" in steps and "hf" not in steps:
        steps.insert(1, "hf")
    bar = tqdm(steps, desc=f"artifacts {key}", disable=not progress, unit="form")
    for step in bar:
        bar.set_postfix_str(step)
        if step == "gguf" and not is_complete(arts.gguf.parent):
            src = Path(gguf_source) if gguf_source else embedded_gguf_path(key)
            build_gguf(src, arts.gguf.parent)
            if not gguf_source and src.is_relative_to(cache_dir() / "_sources"):
                src.unlink(missing_ok=True)  # assembled only to be copied in
        elif step == "hf":
            build_hf(arts.gguf, arts.hf)
        elif step == "onnx":
            build_onnx(arts.hf, arts.onnx)
    return arts
