"""OpenVINO GenAI (`openvino-genai`): Intel's engine for laptop and server CPUs (article 001's
i5-1135G7 class), `LLMPipeline` on an OpenVINO IR folder.

Its form, ``openvino-fp16``, is derived once from the embedded model's HF folder by
:func:`convert` (run as ``python -m slmstudy.backends.openvino convert SRC DST`` so its logs go to
a file). optimum-intel, the usual exporter, pins transformers < 5.6 (this study runs 5.19), so
the conversion follows optimum-intel's own recipe (optimum/exporters/openvino: `patch_stateful`,
`fuse_cache_reorder`, `build_state_initializer`) with OpenVINO's public API: trace the decoder
with an explicit KV cache (`ov.convert_model`), add the `beam_idx` reorder on every cache input,
make the cache internal state (`apply_make_stateful_transformation`), zero-initialise the states,
save with fp16 weights; the tokenizer and detokenizer come from `openvino_tokenizers`.

Log-likelihood reads the logits of the same IR compiled with f32 inference precision (the
pipeline returns scores of generated tokens only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ModelNotFoundError, StudyError
from ..forms import HF, ArtifactForm
from .base import Backend, EngineOptions, GenRequest, RunContext
from .registry import Capabilities, EngineSpec

IR = "openvino_model.xml"


class OpenVINOOptions(EngineOptions):
    device: Literal["CPU", "GPU"] = "CPU"
    # "PA": paged attention (the pipeline's default on CPU); "SDPA": the stateful IR as built
    attention_backend: Literal["PA", "SDPA"] | None = None
    threads: int | None = None  # INFERENCE_NUM_THREADS (None: OpenVINO's default, every core)

    @classmethod
    def for_run(cls, ctx: RunContext) -> dict:
        return {"seed": ctx.seed, "threads": ctx.threads}

    def on_cpu(self) -> bool:
        return self.device == "CPU"


class OpenVINOForm(ArtifactForm):
    """An OpenVINO IR folder: openvino_model.xml/.bin (stateful decoder) + tokenizer IRs."""

    name = "openvino"

    def embedded(self, key: str | None = None) -> Path:
        from ..models import EMBEDDED_KEY
        from ..paths import cache_dir

        key = key or EMBEDDED_KEY
        return build(HF.embedded(key), cache_dir() / key / "openvino-fp16")

    def replica(self, key: str, fmt: str) -> Path:
        raise StudyError(f"no OpenVINO replica of {key}: the openvino form is converted from real "
                         "weights; time replicas with transformers, vLLM, llama.cpp or ortgenai")

    def check_local(self, path: Path, engine: str) -> None:
        missing = [f for f in (IR, "openvino_tokenizer.xml", "openvino_detokenizer.xml")
                   if not (path / f).is_file()]
        if missing:
            raise ModelNotFoundError(
                f"{engine} needs an OpenVINO IR folder; {path} lacks {', '.join(missing)}. Convert "
                f"an HF folder with `python -m slmstudy.backends.openvino convert HF_DIR {path}`")

    def sizes(self, path: Path, dtype: str, arch=None) -> tuple[int, int]:
        data = (path / "openvino_model.bin").stat().st_size
        emb = 0 if arch is None or arch.tie_word_embeddings else arch.embedding_params() * 2
        return data, max(data - emb, 1)

    def tokenizer_dir(self, path: Path) -> Path | None:
        return path if (path / "tokenizer.json").is_file() else None


OPENVINO = OpenVINOForm()


def build(hf_folder: Path, folder: Path) -> Path:
    """Convert an HF folder into an OpenVINO IR folder (once; atomic; manifest with hashes)."""
    from ..artifacts import MANIFEST, build_atomically, dir_sha256, is_complete, locked, write_manifest
    from ..provenance import package_versions

    with locked(folder):
        if is_complete(folder):
            return folder

        def _build(tmp: Path):
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            proc = subprocess.run([sys.executable, "-m", "slmstudy.backends.openvino", "convert",
                                   str(hf_folder), str(tmp)], capture_output=True, text=True,
                                  env=env)
            (tmp.parent / f"{folder.name}.convert.log").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise StudyError(f"OpenVINO conversion of {hf_folder} failed (exit "
                                 f"{proc.returncode}); last output:\n{(proc.stdout + proc.stderr)[-2000:]}")
            src = hf_folder / MANIFEST
            src_sha = json.loads(src.read_text()).get("sha256") if src.is_file() else None
            write_manifest(tmp, "openvino-fp16", hf_folder, src_sha, dir_sha256(tmp),
                           package_versions(("openvino", "openvino-genai", "openvino-tokenizers",
                                             "torch", "transformers")))

        build_atomically(folder, _build)
    return folder


def convert(src: Path, dst: Path) -> None:
    """HF folder → stateful OpenVINO IR (fp16 weights) + tokenizer/detokenizer IRs."""
    import openvino as ov
    import torch
    from openvino import opset13
    from openvino._offline_transformations import apply_make_stateful_transformation
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32,
                                                 attn_implementation="sdpa").eval()
    cfg = model.config
    n_layers, kv_heads = cfg.num_hidden_layers, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    class WithExplicitCache(torch.nn.Module):
        """forward(input_ids, attention_mask, position_ids, *past) → (logits, *present)."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache(config=self.m.config)
            for i, layer in enumerate(cache.layers):  # set, not update(): no cat onto empty
                layer.dtype, layer.device, layer.is_initialized = past[2 * i].dtype, past[2 * i].device, True
                layer.keys, layer.values = past[2 * i], past[2 * i + 1]
            out = self.m(input_ids=input_ids, attention_mask=attention_mask,
                         position_ids=position_ids, past_key_values=cache, use_cache=True)
            return (out.logits, *[t for layer in out.past_key_values.layers
                                  for t in (layer.keys, layer.values)])

    past_len, new = 3, 2  # tracing shapes; every dimension below is dynamic
    past = [torch.randn(1, kv_heads, past_len, head_dim) for _ in range(2 * n_layers)]
    example = (torch.ones(1, new, dtype=torch.long), torch.ones(1, past_len + new, dtype=torch.long),
               torch.arange(past_len, past_len + new).unsqueeze(0), *past)
    kv_names = [f"past_key_values.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]
    in_names = ["input_ids", "attention_mask", "position_ids", *kv_names]
    out_names = ["logits", *[f"present.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]]
    inputs = [(ov.PartialShape([-1, -1]), ov.Type.i64)] * 3 + \
        [(ov.PartialShape([-1, kv_heads, -1, head_dim]), ov.Type.f32)] * (2 * n_layers)
    with torch.no_grad():
        ovm = ov.convert_model(WithExplicitCache(model), example_input=example, input=inputs)
    for port, name in zip(ovm.inputs, in_names):
        port.get_tensor().set_names({name})
    for port, name in zip(ovm.outputs, out_names):
        port.get_tensor().set_names({name})
    # beam_idx reorders the cache rows (optimum-intel: fuse_cache_reorder)
    beam_idx = opset13.parameter(name="beam_idx", dtype=ov.Type.i32, shape=ov.PartialShape([-1]))
    beam_idx.output(0).get_tensor().add_names({"beam_idx"})
    ovm.add_parameters([beam_idx])
    for name in kv_names:
        port = ovm.input(name)
        consumers = port.get_target_inputs()
        gathered = opset13.gather(port, beam_idx, opset13.constant(0))
        for c in consumers:
            c.replace_source_output(gathered.output(0))
    ovm.validate_nodes_and_infer_types()
    apply_make_stateful_transformation(ovm, dict(zip(kv_names, out_names[1:])))
    # states start as zeros [batch, kv_heads, 0, head_dim] (optimum-intel: build_state_initializer)
    batch = opset13.gather(opset13.shape_of(ovm.input("input_ids"), output_type="i64"),
                           opset13.constant([0]), opset13.constant(0))
    for op in ovm.get_ops():
        if op.get_type_name() == "ReadValue":
            dims = [d.min_length for d in op.get_output_partial_shape(0)]
            dims[0] = batch
            dims = [opset13.constant(np.array([d], dtype=np.int64)) if isinstance(d, int) else d
                    for d in dims]
            zero = opset13.constant(0.0, dtype=op.get_output_element_type(0))
            op.set_arguments([opset13.broadcast(zero, opset13.concat(dims, axis=0))])
    ovm.validate_nodes_and_infer_types()
    dst.mkdir(parents=True, exist_ok=True)
    ov.save_model(ovm, dst / IR, compress_to_fp16=True)
    tok, detok = convert_tokenizer(AutoTokenizer.from_pretrained(src), with_detokenizer=True)
    ov.save_model(tok, dst / "openvino_tokenizer.xml")
    ov.save_model(detok, dst / "openvino_detokenizer.xml")
    for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "chat_template.jinja", "special_tokens_map.json"):
        if (src / f).is_file():
            shutil.copy(src / f, dst / f)


class OpenVINOBackend(Backend):
    """`openvino_genai.LLMPipeline.generate` on token ids, timestamped by a per-token streamer."""

    name = "openvino"
    Options = OpenVINOOptions

    def _load(self) -> None:
        OPENVINO.check_local(self.model_path, self.name)
        import openvino_genai as og

        self.og = og
        o = self.options
        props = {}
        if o.attention_backend:
            props["ATTENTION_BACKEND"] = o.attention_backend
        if o.threads:
            props["INFERENCE_NUM_THREADS"] = int(o.threads)
        self.pipe = og.LLMPipeline(str(self.model_path), o.device, **props)
        self.tokenizer = None if self.replica else self.pipe.get_tokenizer()
        self._logits_request = None

    def decode(self, ids):
        return self.tokenizer.decode(list(ids), skip_special_tokens=True) if self.tokenizer else ""

    def _config(self, req: GenRequest):
        cfg = self.og.GenerationConfig(max_new_tokens=req.max_tokens,
                                       do_sample=req.temperature > 0, rng_seed=req.seed)
        if req.force_length:
            cfg.min_new_tokens = req.max_tokens
            cfg.ignore_eos = True
        else:
            if self.stop_ids:
                cfg.stop_token_ids = set(self.stop_ids)
            if req.stop:
                cfg.stop_strings = set(req.stop)
                cfg.include_stop_str_in_output = True
        if req.temperature > 0:
            cfg.temperature, cfg.top_p, cfg.top_k = req.temperature, req.top_p, 0
        return cfg

    def _stream(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        import openvino as ov

        og = self.og
        arrivals: list[tuple[int, int]] = []

        class Timestamps(og.StreamerBase):
            def write(self, token):
                t = time.perf_counter_ns()
                for tok in token if isinstance(token, list) else [token]:
                    arrivals.append((int(tok), t))
                return og.StreamingStatus.RUNNING

            def end(self):
                pass

        ids = np.asarray([req.prompt_ids], dtype=np.int64)
        inputs = og.TokenizedInputs(ov.Tensor(ids), ov.Tensor(np.ones_like(ids)))
        # generate() runs to completion; tokens are yielded with the times they were produced
        self.pipe.generate(inputs, self._config(req), Timestamps())
        yield from arrivals[: req.max_tokens]

    def _stop_ids(self) -> set[int]:
        gen_cfg = self.pipe.get_generation_config()
        own = set(getattr(gen_cfg, "stop_token_ids", None) or ()) | {gen_cfg.eos_token_id}
        return super()._stop_ids() | {int(e) for e in own if e is not None and int(e) >= 0}

    def _logits_rows(self, ids: list[int], n: int) -> np.ndarray:
        import openvino as ov

        if self._logits_request is None:  # the same IR, f32 inference: logits of every position
            compiled = ov.Core().compile_model(str(self.model_path / IR), "CPU",
                                               {"INFERENCE_PRECISION_HINT": "f32"})
            self._logits_request = compiled.create_infer_request()
        req = self._logits_request
        req.reset_state()
        x = np.asarray([ids], dtype=np.int64)
        req.infer({"input_ids": x, "attention_mask": np.ones_like(x),
                   "position_ids": np.arange(x.shape[1], dtype=np.int64)[None],
                   "beam_idx": np.zeros(1, dtype=np.int32)})
        return req.get_tensor("logits").data[0, -n:].astype(np.float64)

    def _close(self):
        self.pipe = None
        self._logits_request = None
        self.tokenizer = None


SPEC = EngineSpec(
    name="openvino", backend=OpenVINOBackend, form=OPENVINO,
    capabilities=Capabilities(streaming=True, batching=False, loglik=True,
                              concurrency="one at a time"),
    package="openvino_genai",
    distributions=("openvino-genai", "openvino", "openvino-tokenizers"),
    description="OpenVINO GenAI LLMPipeline (OpenVINO IR, fp16 weights)",
)


def _main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="convert an HF folder to an OpenVINO IR folder")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("src")
    c.add_argument("dst")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    convert(Path(a.src), Path(a.dst))
    print(f"converted {a.src} → {a.dst} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    _main()
