import math
import os

import pytest

from slmstudy import artifacts, gguf_meta
from slmstudy.errors import CorruptModelError, ModelNotFoundError


def test_manifests_record_hashes_sizes_tools(arts):
    ms = arts.manifests()
    assert set(ms) == {"gguf", "hf", "onnx"}
    for name, m in ms.items():
        assert len(m["sha256"]) == 64 and m["size_bytes"] > 1e6 and m["tools"], name
    assert ms["hf"]["source_sha256"] == ms["gguf"]["sha256"]
    assert ms["onnx"]["source_sha256"] == ms["hf"]["sha256"]
    assert ms["gguf"]["sha256"] == artifacts.sha256_file(arts.gguf)
    assert (arts.hf / "model.safetensors").is_file() and (arts.onnx / "genai_config.json").is_file()


def test_prepare_is_idempotent(arts):
    before = {p: os.stat(p).st_mtime_ns for p in (arts.gguf, arts.hf / "model.safetensors",
                                                   arts.onnx / "model.onnx")}
    again = artifacts.prepare(progress=False)
    assert again == arts
    assert {p: os.stat(p).st_mtime_ns for p in before} == before


def test_half_written_artifact_is_rebuilt(tmp_path, arts):
    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"GGUF-truncated")  # an interrupted copy: no manifest
    (tmp_path / "gguf.tmp-99999").mkdir()  # a stale temp dir of a killed run
    out = artifacts.build_gguf(arts.gguf, folder)
    assert artifacts.sha256_file(out) == arts.manifests()["gguf"]["sha256"]
    assert (folder / artifacts.MANIFEST).is_file()
    assert not (tmp_path / "gguf.tmp-99999").exists()


def test_corrupt_and_missing_gguf_errors(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(CorruptModelError, match="not a GGUF file"):
        gguf_meta.check_gguf(bad)
    trunc = tmp_path / "trunc.gguf"
    trunc.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(CorruptModelError, match="truncated or corrupt"):
        gguf_meta.check_gguf(trunc)
    with pytest.raises(ModelNotFoundError, match="not found"):
        gguf_meta.check_gguf(tmp_path / "missing.gguf")


def test_gguf_architecture_matches_registry(arts):
    from slmstudy.models import get_model

    assert gguf_meta.architecture(arts.gguf).param_count() == \
        get_model("smollm2_135m").arch.param_count()


def test_gemma_gguf_architecture_matches_registry():
    """The second bundled model: the GGUF its package assembles has the shape registered from
    google/gemma-3-270m's config.json (head_dim 256 read from attention.key_length)."""
    from slmstudy.models import embedded_gguf_path, get_model

    got = gguf_meta.architecture(embedded_gguf_path("gemma3_270m"))
    want = get_model("gemma3_270m").arch
    assert (got.head_size, got.num_key_value_heads, got.vocab_size) == (256, 1, 262144)
    assert got.param_count() == want.param_count()
    # against the tensors themselves (the HF folder transformers dequantized): the count misses
    # only Gemma's q/k norms and its two extra norms per layer, 18 × (2·640 + 2·256)
    import json
    import struct

    from slmstudy.forms import HF

    with open(HF.embedded("gemma3_270m") / "model.safetensors", "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    n = sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    assert n == want.param_count() + 18 * (2 * 640 + 2 * 256)


def test_a_carried_tokenizer_is_used_as_it_is_and_named_in_the_manifest(tmp_path, arts, monkeypatch):
    """SLMSTUDY_TOKENIZERS (the GPU machine): the HF folder derived from a GGUF takes the
    tokenizer files made from that GGUF elsewhere, byte for byte, instead of making its own (a
    tokenizer made from a GGUF depends on the transformers version); the manifest names them. A
    set variable without this GGUF's folder is refused with the fix."""
    import json
    import shutil

    sha = json.loads((arts.gguf.parent / "artifact.json").read_text())["sha256"]
    carried = tmp_path / "tok" / sha[:16]
    carried.mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(arts.hf / f, carried / f)
    cfg = json.loads((carried / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = 12345  # a mark only the carried file has
    (carried / "tokenizer_config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("SLMSTUDY_TOKENIZERS", str(tmp_path / "tok"))
    out = artifacts.build_hf(arts.gguf, tmp_path / "hf")
    assert (out / "tokenizer_config.json").read_bytes() == (carried / "tokenizer_config.json").read_bytes()
    assert (out / "tokenizer.json").read_bytes() == (arts.hf / "tokenizer.json").read_bytes()
    assert json.loads((out / "artifact.json").read_text())["tools"]["tokenizer"] == str(carried)
    monkeypatch.setenv("SLMSTUDY_TOKENIZERS", str(tmp_path / "elsewhere"))
    with pytest.raises(artifacts.StudyError, match="no tokenizer_config.json.*pack_quality"):
        artifacts.build_hf(arts.gguf, tmp_path / "hf2")
