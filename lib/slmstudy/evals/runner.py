"""The quality loop: render → generate (greedy) → score → append one record per sample.

A *task* is data: samples (chat messages + gold answer), a scorer and generation settings
(inspect_ai's dataset + solver + scorer). An :class:`Evaluator` runs tasks for one model × engine
*target*, keeping one loaded backend across all samples and tasks, and loading it only if some
sample still needs it. Every sample's record is appended to the section's `samples.jsonl` as soon
as it is scored, so an interrupted run resumes where it stopped: a sample whose key is already in
the log is not run again.

The chat template is rendered once with the model's Hugging Face tokenizer
(:func:`~slmstudy.chat.render_chat`), and those prompt token ids go to whichever engine
runs, so two engines see the same prompt. The same generation is timed (TTFT, decode tokens/s)
and scored, so accuracy and speed come from one run.

Verdicts: ``correct``, ``wrong``, ``format_failure`` (no answer in the expected format; counted
apart from wrong answers), ``timeout`` (generated code ran out of time) and ``crash`` (the engine,
the scorer or the generated program failed). Summaries (:func:`summarize`) are Wilson 95%
intervals over all samples, with format failures reported apart.

Multiple choice can also be scored by **log-likelihood** (``mode="loglik"``): the engine's
log-probability of each option letter as the next token after the assistant has "written"
``答案：`` (:meth:`Backend.loglikelihood`) — on every engine whose registry entry has the
``loglik`` capability.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..backends import registry
from ..backends.base import Backend, EngineOptions, GenRequest, RunContext
from ..chat import render_chat, tokenizer
from ..errors import ModelNotFoundError, StudyError
from ..results import SectionResults
from ..schemas import QualitySample, QualitySummary

VERDICTS = ("correct", "wrong", "format_failure", "timeout", "crash")
MODES = ("generate", "loglik")


# ------------------------------------------------------------------------------ task data


@dataclass
class Sample:
    """One item: `messages` (chat turns) to render, `gold` answer, `meta` (subject, level, ...)
    copied into the record, `data` that only the scorer needs (tests, schemas; not recorded)."""

    id: str
    messages: list[dict]
    gold: Any = None
    meta: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    #: the whole prompt as plain text, for tasks whose protocol uses no chat template
    #: (`Task.prompt_format == "text"`, lm-eval's default); `messages` then only documents it
    prompt: str | None = None


@dataclass
class Score:
    """A scorer's verdict on one output. `extracted`: the answer found (None = none found).
    `verdicts`: further named verdicts (e.g. GSM8K {"flexible": "correct"}); `value`: a partial
    score in [0, 1] where the task has one (rubric share of checks passed)."""

    verdict: str
    extracted: Any = None
    detail: dict = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    value: float | None = None

    def __post_init__(self):
        for v in [self.verdict, *self.verdicts.values()]:
            if v not in VERDICTS:
                raise StudyError(f"verdict {v!r} is not one of {VERDICTS}")


Scorer = Callable[[str, Sample], Score]


@dataclass
class Task:
    """A benchmark (or a slice of one) as data.

    `config` holds every setting that changes what the model sees or may answer (shots, template
    version, max_tokens); its hash is part of each record key, so changing a setting under the
    same run id runs the samples again instead of mixing old and new records.
    `mode="loglik"` scores `continuations` (one text per choice, e.g. " A") by their summed
    log-probability after the sample's text prompt, as lm-eval's `multiple_choice` requests do.
    `prompt_format`: "chat" (the model's chat template over `messages`) or "text" (the sample's
    `prompt` as it is, tokenized as lm-eval tokenizes). `stop`: strings at which a generation is
    cut before scoring (lm-eval's `until`). `protocol`: the named reference protocol
    (:mod:`slmstudy.evals.protocols`) the task implements, recorded with every sample.
    """

    name: str
    samples: list[Sample]
    scorer: Scorer | None = None
    max_tokens: int = 256
    mode: str = "generate"
    config: dict = field(default_factory=dict)
    choices: str = "ABCD"
    prompt_format: str = "chat"
    continuations: tuple[str, ...] | None = None
    stop: tuple[str, ...] = ()
    protocol: str = ""
    # the scorer may run in threads, samples side by side (it runs each program in its own
    # process); a scorer with SIGALRM timeouts (math-verify's) must stay in the main thread
    threaded_scoring: bool = False

    def __post_init__(self):
        if self.prompt_format not in ("chat", "text"):
            raise StudyError(f"task {self.name}: prompt_format must be 'chat' or 'text', "
                             f"not {self.prompt_format!r}")
        if self.prompt_format == "text" and any(s.prompt is None for s in self.samples):
            raise StudyError(f"task {self.name}: a text-format task needs `prompt` on every sample")
        if self.mode == "loglik" and (self.continuations is None or self.prompt_format != "text"):
            raise StudyError(f"task {self.name}: a log-likelihood task scores `continuations` "
                             "after a text-format prompt (prompt_format='text')")
        if self.continuations is not None and len(self.continuations) != len(self.choices):
            raise StudyError(f"task {self.name}: {len(self.continuations)} continuations for "
                             f"{len(self.choices)} choices")
        if self.mode not in MODES:
            raise StudyError(f"task {self.name}: mode must be one of {MODES}, not {self.mode!r}")
        if self.mode == "generate" and self.scorer is None:
            raise StudyError(f"task {self.name}: a generative task needs a scorer")
        ids = [s.id for s in self.samples]
        if len(set(ids)) != len(ids):
            raise StudyError(f"task {self.name}: sample ids are not unique")

    @property
    def config_id(self) -> str:
        cfg = {**self.config, "max_tokens": self.max_tokens, "mode": self.mode}
        if self.mode == "loglik":
            cfg.update(choices=self.choices)
        if self.prompt_format != "chat" or self.continuations or self.stop or self.protocol:
            cfg.update(prompt_format=self.prompt_format, continuations=self.continuations,
                       stop=list(self.stop), protocol=self.protocol)
        blob = json.dumps(cfg, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------ targets


@dataclass
class EvalTarget:
    """A model in one engine: where the engine loads from and where its HF tokenizer is."""

    model: str
    engine: str
    path: Path
    tokenizer_dir: Path
    options: EngineOptions | None = None
    label: str = ""

    def __post_init__(self):
        self.label = self.label or f"{self.model}/{self.engine}"


def resolve_target(model: str, engine: str, *, path: str | None = None,
                   tokenizer: str | None = None, label: str | None = None,
                   threads: int | None = None, n_ctx: int = 4096,
                   dtype: str = "float32", seed: int = 0,
                   options: dict | None = None, device: str = "cpu",
                   batch: int = 1) -> EvalTarget:
    """Find the files for `model` in `engine`. A bundled model (SmolLM2-135M-Instruct, Gemma 3
    270M) is derived on first use (slmstudy.artifacts.prepare); any other model needs a local
    `path` (and, for a GGUF, the HF `tokenizer` folder that holds its chat template). Nothing is
    substituted silently. `options`: the engine's options by name, over the section's defaults;
    `device` and `batch` (the most samples sent at once) reach them through the run context."""
    from ..forms import HF
    from ..models import BUNDLED

    spec = registry.get(engine)
    if path is None:
        if model not in BUNDLED:
            raise ModelNotFoundError(
                f"no local weights for model {model!r}: quality needs the real checkpoint. Set "
                f"`path` for it in the targets of your params (an HF folder for "
                f"transformers/vllm, a .gguf for llamacpp, an ONNX folder for ortgenai), or use "
                f"a bundled model ({', '.join(BUNDLED)}).")
        model_path = spec.form.embedded(model)
        tok_dir = HF.embedded(model)  # the HF tokenizer renders the prompts for every engine
    else:
        model_path = Path(path).expanduser().resolve()
        if not model_path.exists():
            raise ModelNotFoundError(f"model path {model_path} (model {model!r}, engine {engine}) "
                                     "does not exist; fix `path` in the targets of your params.")
        if tokenizer:
            tok_dir = Path(tokenizer).expanduser().resolve()
        elif model_path.is_dir() and (model_path / "tokenizer_config.json").is_file():
            tok_dir = model_path
        elif model_path.suffix == ".gguf":  # its own vocabulary and chat template
            from ..artifacts import gguf_tokenizer

            tok_dir = gguf_tokenizer(model_path)
        else:
            raise ModelNotFoundError(
                f"{model_path} has no Hugging Face tokenizer (tokenizer_config.json) in it; set "
                "`tokenizer` to the model's HF folder (its chat template renders the prompts for "
                "every engine), or give a .gguf, which carries its own.")
    opts = spec.options_for(RunContext(device=device, n_ctx=n_ctx, threads=threads, seed=seed,
                                       dtype=dtype, max_concurrency=batch if batch > 1 else None),
                            options)
    return EvalTarget(model=model, engine=engine, path=model_path, tokenizer_dir=tok_dir,
                      options=opts, label=label or "")


# ------------------------------------------------------------------------------ log-likelihood


# ------------------------------------------------------------------------------ the loop


def record_key(task: Task, target: EvalTarget, sample_id: str) -> str:
    """Resume key of one sample: task, hash of its settings, target, sample id."""
    return f"{task.name}/{task.config_id}/{target.label}/{sample_id}"


def _ids_sha256(ids: list[int]) -> str:
    return hashlib.sha256(json.dumps([int(i) for i in ids]).encode()).hexdigest()[:16]


def encode_text(tokenizer_dir: str | Path, text: str) -> list[int]:
    """A plain-text prompt as lm-eval 0.4.13's HF model encodes it (`tok_encode`): the
    tokenizer's own special-token default (a BOS only where the tokenizer adds one)."""
    return [int(i) for i in tokenizer(tokenizer_dir).encode(text)]


def encode_pair(tokenizer_dir: str | Path, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) as lm-eval's `_encode_pair`: trailing whitespace of the
    context moves to the continuation; the whole string is encoded and split after the
    context's own encoding, so the continuation's tokens are those of the joined text."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode_text(tokenizer_dir, context + continuation)
    ctx = encode_text(tokenizer_dir, context)
    return whole[:len(ctx)], whole[len(ctx):]


def cut_at_stop(text: str, stop: Iterable[str]) -> tuple[str, str | None]:
    """The text before the first occurrence of any stop string (lm-eval's `until`), and which."""
    best, which = len(text), None
    for s in stop:
        i = text.find(s)
        if 0 <= i < best:
            best, which = i, s
    return text[:best], which


def prompt_ids(target: EvalTarget, task: Task, sample: Sample) -> list[int]:
    """The chat template rendered once with the model's HF tokenizer (the same ids go to every
    engine); a text-format task's prompt encoded as it is (:func:`encode_text`)."""
    if task.prompt_format == "text":
        return encode_text(target.tokenizer_dir, sample.prompt)
    return render_chat(target.tokenizer_dir, sample.messages)


def prompt_text(target: EvalTarget, task: Task, sample: Sample) -> str:
    """The exact prompt the engines see, as text (special tokens kept) — for showing it."""
    tok = tokenizer(target.tokenizer_dir)
    return tok.decode(prompt_ids(target, task, sample), skip_special_tokens=False)


class Evaluator:
    """Runs tasks for one target, appending to `results`; one backend, loaded on first need."""

    def __init__(self, target: EvalTarget, results: SectionResults, *, seed: int = 0,
                 section: str = "", progress: bool = True, batch: int = 1):
        self.target = target
        self.batch = batch  # samples per engine call, where the engine batches (engine_batches)
        self.results = results
        self.seed = seed
        self.section = section or results.dir.name
        self.progress = progress
        self.backend: Backend | None = None
        self.load_s: float | None = None

    # -- lifecycle
    def _ensure_backend(self) -> Backend:
        if self.backend is None:
            t = self.target
            self.backend = registry.make_backend(t.engine, t.path, options=t.options,
                                                 model_name=t.model)
            self.load_s = self.backend.load()
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- running
    def pending(self, task: Task) -> list[Sample]:
        done = self.results.done_keys()
        return [s for s in task.samples if record_key(task, self.target, s.id) not in done]

    def run(self, task: Task) -> list[dict]:
        """Run the samples of `task` that are not in the log yet; return all of the task's
        records for this target (resumed and new), in sample order."""
        if task.mode == "loglik" and not registry.get(self.target.engine).capabilities.loglik:
            raise StudyError(f"{self.target.label}: log-likelihood scoring needs log-probabilities"
                             f" from the engine; engines with them: "
                             f"{list(registry.with_capability('loglik'))}. Drop `loglik` for "
                             f"engine {self.target.engine}.")
        todo = self.pending(task)
        if todo:
            from tqdm import tqdm  # plain text bar: executed notebooks keep a few lines, no widgets

            backend = self._ensure_backend()
            if task.mode == "loglik":  # prompts that share a prefix (one subject's header and
                todo = sorted(todo, key=lambda s: s.prompt or "")  # shots) run back to back
            bar = tqdm(total=len(todo), desc=f"{task.name} [{task.mode}] {self.target.label}",
                       disable=not self.progress, unit="sample", mininterval=10)
            n_ok = n = 0
            size = self.batch if engine_batches(backend) else 1
            for start in range(0, len(todo), size):
                chunk = todo[start:start + size]
                if size == 1:
                    recs = [self._generate_one(backend, task, chunk[0]) if task.mode == "generate"
                            else self._continuations_one(backend, task, chunk[0])]
                else:
                    recs = (self._generate_chunk(backend, task, chunk) if task.mode == "generate"
                            else self._continuations_chunk(backend, task, chunk))
                for rec in recs:  # each record appended as soon as it is scored
                    self.results.append(QualitySample.model_validate({**rec, **backend.placement}))
                    n_ok += rec["verdict"] == "correct"
                    n += 1
                    bar.update(1)
                    bar.set_postfix_str(f"acc {n_ok}/{n}", refresh=False)
            bar.close()
        return self.task_records(task)

    def task_records(self, task: Task) -> list[dict]:
        by_key = {r["key"]: r for r in self.results.records() if "key" in r}
        keys = [record_key(task, self.target, s.id) for s in task.samples]
        return [by_key[k] for k in keys if k in by_key]

    def _base_record(self, task: Task, sample: Sample, ids: list[int]) -> dict:
        tok = tokenizer(self.target.tokenizer_dir)
        return {
            "key": record_key(task, self.target, sample.id), "section": self.section,
            "task": task.name, "mode": task.mode, "config_id": task.config_id,
            "config": {**task.config, "max_tokens": task.max_tokens,
                       **({"protocol": task.protocol} if task.protocol else {}),
                       **({"stop": list(task.stop)} if task.stop else {})},
            "target": self.target.label, "model": self.target.model,
            "engine": self.target.engine, "sample_id": sample.id, "meta": sample.meta,
            "messages": sample.messages, "prompt": sample.prompt if task.prompt_format == "text" else None,
            "prompt_text": tok.decode(ids, skip_special_tokens=False),
            "n_prompt": len(ids), "prompt_ids_sha256": _ids_sha256(ids),
            "gold": sample.gold, "seed": self.seed,
        }

    def _prompt_ids(self, task: Task, sample: Sample) -> list[int]:
        return prompt_ids(self.target, task, sample)

    def _request(self, task: Task, sample: Sample) -> tuple[dict, GenRequest]:
        ids = self._prompt_ids(task, sample)
        return self._base_record(task, sample, ids), GenRequest(
            prompt_ids=ids, max_tokens=task.max_tokens, temperature=0.0, seed=self.seed,
            request_id=sample.id, stop=tuple(task.stop))

    @staticmethod
    def _crashed(rec: dict, e: Exception) -> dict:
        """The engine failed on this sample: an outcome, recorded."""
        rec.update(raw_output=None, extracted=None, verdict="crash", verdicts={},
                   detail={"stage": "generate", "error": f"{type(e).__name__}: {e}",
                           "traceback": traceback.format_exc(limit=5)},
                   n_tokens=0, finish_reason="error")
        return rec

    def _generate_one(self, backend: Backend, task: Task, sample: Sample) -> dict:
        rec, req = self._request(task, sample)
        try:
            g = backend.generate_one(req)
        except Exception as e:
            return self._crashed(rec, e)
        return self._scored(rec, g, task, sample)

    def _generate_chunk(self, backend: Backend, task: Task, samples: list[Sample]) -> Iterator[dict]:
        """Several samples in one engine call (the engine schedules them as one batch, as lm-eval
        hands vLLM all of a task's requests); each is then scored as in the one-by-one loop and
        yielded at once (the caller appends it), the programs of a code task side by side in
        threads (`Task.threaded_scoring`)."""
        from concurrent.futures import ThreadPoolExecutor

        pairs = [self._request(task, s) for s in samples]
        try:
            gens = backend.generate([req for _, req in pairs])
        except Exception:
            # one request can fail a whole batch (vLLM refuses a prompt longer than its context
            # for all of them): each sample then runs alone, so only the one at fault is a crash
            yield from (self._generate_one(backend, task, s) for s in samples)
            return
        for rec, _ in pairs:
            rec["batch"] = len(samples)
        jobs = [(rec, g, task, s) for (rec, _), g, s in zip(pairs, gens, samples)]
        if not task.threaded_scoring:
            yield from (self._scored(*job) for job in jobs)
            return
        with ThreadPoolExecutor(max_workers=min(8, len(samples))) as pool:
            yield from pool.map(lambda job: self._scored(*job), jobs)  # in order, as each is done

    def _scored(self, rec: dict, g, task: Task, sample: Sample) -> dict:
        rec.update(raw_output=g.text, output_ids=g.output_ids, n_tokens=g.n_tokens,
                   finish_reason=g.finish_reason, ttft_s=g.ttft_s if g.token_times_ns else None,
                   decode_tok_s=g.decode_tok_s if g.token_times_ns else None,
                   e2e_s=g.e2e_s if g.token_times_ns else None,
                   chars_per_s=(metrics.chars_per_s(g.text, g.t_send_ns, g.token_times_ns)
                                if g.token_times_ns else None))
        text, stopped_at = cut_at_stop(g.text, task.stop) if task.stop else (g.text, None)
        if stopped_at is not None:
            rec["finish_reason"] = "stop_string"
        t0 = time.perf_counter()
        try:
            score = task.scorer(text, sample)
        except Exception as e:
            score = Score("crash", None, {"stage": "score", "error": f"{type(e).__name__}: {e}",
                                          "traceback": traceback.format_exc(limit=5)})
        detail = {**score.detail, **({"stop_string": stopped_at, "scored_chars": len(text)}
                                      if stopped_at is not None else {})}
        rec.update(extracted=score.extracted, verdict=score.verdict, verdicts=score.verdicts,
                   score_value=score.value, detail=detail, score_s=time.perf_counter() - t0)
        return rec

    def _continuations_one(self, backend: Backend, task: Task, sample: Sample) -> dict:
        return self._continuations_chunk(backend, task, [sample], batched=False)[0]

    def _continuations_chunk(self, backend: Backend, task: Task, samples: list[Sample], *,
                             batched: bool = True) -> list[dict]:
        """lm-eval's multiple_choice: log P(continuation | prompt) for each choice's text; the
        answer is the argmax of the sums (lm-eval `acc`; `acc_norm` divides by the
        continuation's length in bytes and is kept in the detail). Every choice of every sample
        goes to the engine in one call (lm-eval's vLLM model sends all of a task's requests at
        once); with several samples, the prefill time and token counts are the call's."""
        if task.prompt_format != "text" or any(s.prompt is None for s in samples):
            raise StudyError(f"task {task.name}: continuations need a text-format prompt")
        k = len(task.continuations)
        pairs = [encode_pair(self.target.tokenizer_dir, s.prompt, c)
                 for s in samples for c in task.continuations]
        recs = [self._base_record(task, s, pairs[i * k][0]) for i, s in enumerate(samples)]
        t0 = time.perf_counter()
        try:
            res = backend.loglikelihood(pairs)
        except Exception as e:
            for rec in recs:
                rec.update(raw_output=None, extracted=None, verdict="crash", verdicts={},
                           detail={"stage": "loglik", "error": f"{type(e).__name__}: {e}"}, n_tokens=0)
            return recs
        prefill_s = time.perf_counter() - t0
        for i, (rec, sample) in enumerate(zip(recs, samples)):
            mine, my_pairs = res[i * k:(i + 1) * k], pairs[i * k:(i + 1) * k]
            lps = {c: r.logprob for c, r in zip(task.choices, mine)}
            norm = {c: r.logprob / max(1, len(cont.encode("utf-8")))
                    for c, r, cont in zip(task.choices, mine, task.continuations)}
            best = max(lps, key=lps.get)  # first of equals, like lm-eval's np.argmax
            best_norm = max(norm, key=norm.get)
            rec.update(raw_output=None, extracted=best,
                       verdict="correct" if best == sample.gold else "wrong",
                       verdicts={"acc_norm": "correct" if best_norm == sample.gold else "wrong"},
                       score_value=None,
                       detail={"continuation_logprobs": lps,
                               "is_greedy": {c: r.is_greedy for c, r in zip(task.choices, mine)},
                               "continuation_ids": {c: p[1] for c, p in zip(task.choices, my_pairs)},
                               "prompt_tokens": dict(backend.loglik_tokens)},
                       n_tokens=0, prefill_s=prefill_s,
                       prefill_tok_s=(backend.loglik_tokens["evaluated"] / prefill_s
                                      if prefill_s > 0 else None))
            if batched:
                rec["batch"] = len(samples)
        return recs


def engine_batches(backend: Backend) -> bool:
    """Does this engine take several requests in one call (its own batch scheduler)?"""
    return type(backend)._generate_batch is not Backend._generate_batch


def run_tasks(target: EvalTarget, tasks: Iterable[Task], results: SectionResults, *,
              seed: int = 0, progress: bool = True, batch: int = 1) -> tuple[list[dict], float | None]:
    """Run every task for one target with one backend; (records, backend load seconds or None
    when everything was already in the log)."""
    out: list[dict] = []
    with Evaluator(target, results, seed=seed, progress=progress, batch=batch) as ev:
        for task in tasks:
            out.extend(ev.run(task))
        return out, ev.load_s


def target_from_spec(spec, params) -> EvalTarget:
    """An EvalTarget from a params `QualityTarget` and the section's threads / n_ctx / seed."""
    return resolve_target(spec.model, spec.engine, path=spec.path, tokenizer=spec.tokenizer,
                          label=spec.name(), threads=params.threads, n_ctx=params.n_ctx,
                          dtype=spec.dtype, seed=params.seed, options=spec.options,
                          device=params.device, batch=params.batch)


def select_tasks(tasks: Iterable[Task], spec) -> list[Task]:
    """The tasks a target runs: generative ones if `spec.generate`, log-likelihood ones if
    `spec.loglik`; with `spec.limit`, each cut to its first `limit` samples (the subsets are
    nested, so these are items every other target of the section scored too)."""
    import dataclasses

    chosen = [t for t in tasks if (t.mode == "generate" and spec.generate)
              or (t.mode == "loglik" and spec.loglik)]
    limit = getattr(spec, "limit", None)
    if limit:
        chosen = [dataclasses.replace(t, samples=t.samples[:limit]) for t in chosen]
    return chosen


def target_info(target: EvalTarget) -> dict:
    """Provenance of a target: files, and the artifact manifest (sha256) where there is one."""
    info = {"label": target.label, "model": target.model, "engine": target.engine,
            "path": str(target.path), "tokenizer_dir": str(target.tokenizer_dir),
            "options": target.options.model_dump() if target.options else {}}
    folder = target.path if target.path.is_dir() else target.path.parent
    manifest = folder / "artifact.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        info["artifact"] = {k: m.get(k) for k in ("kind", "sha256", "source_sha256", "size_bytes")}
    return info


def run_section(params, tasks: list[Task], results: SectionResults, *,
                progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Every target of a section's params over its tasks, one backend at a time.
    Returns (records of the current plan, per-target info with load seconds)."""
    records: list[dict] = []
    infos: list[dict] = []
    for spec in params.targets:
        target = target_from_spec(spec, params)
        chosen = select_tasks(tasks, spec)
        runnable, skipped = split_by_chat_template(target, chosen)
        recs, load_s = run_tasks(target, runnable, results, seed=params.seed, progress=progress,
                                 batch=params.batch)
        records.extend(recs)
        infos.append({**target_info(target), "load_s": load_s, "n_records": len(recs),
                      "skipped": skipped})
    return records, infos


def skipped_table(infos: list[dict]):
    """The protocols a section's targets did not run, with the reason (a DataFrame; a
    sentence when every target ran everything)."""
    import pandas as pd

    rows = [{"target": i["label"], "task [protocol]": k, "why": v}
            for i in infos for k, v in (i.get("skipped") or {}).items()]
    return pd.DataFrame(rows) if rows else "every target ran every protocol of the section"


def has_chat_template(tokenizer_dir: Path) -> bool:
    return bool(tokenizer(tokenizer_dir).chat_template)


def split_by_chat_template(target: EvalTarget, tasks: list[Task]) -> tuple[list[Task], dict]:
    """(tasks the target can run, {task [protocol]: why not}): a base model's tokenizer has no
    chat template, so chat-format protocols are not run for it (no template is made up); its
    text protocols (log-likelihood, few-shot completion) run as for any model."""
    if has_chat_template(target.tokenizer_dir):
        return tasks, {}
    skipped = {f"{t.name} [{t.protocol or t.mode}]": "no chat template: a base model; the "
               "chat protocol is not run (its text protocols are)"
               for t in tasks if t.prompt_format == "chat"}
    return [t for t in tasks if t.prompt_format != "chat"], skipped


# ------------------------------------------------------------------------------ summaries


def _get(rec: dict, field_name: str):
    cur: Any = rec
    for part in field_name.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _median(values) -> float | None:
    xs = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.median(xs) if xs else None


def summarize_records(records: list[dict]) -> dict:
    """Counts per verdict, accuracy with its Wilson 95% CI over all samples (format failures,
    timeouts and crashes count as not correct), accuracy over answered samples, format-failure
    rate, further named verdicts, the mean partial score, and the generation's speed."""
    n = len(records)
    counts = {v: sum(r.get("verdict") == v for r in records) for v in VERDICTS}
    acc, lo, hi = metrics.binomial_ci(counts["correct"], n)
    answered = n - counts["format_failure"]
    acc_ans, lo_ans, hi_ans = metrics.binomial_ci(counts["correct"], answered)
    ff, ff_lo, ff_hi = metrics.binomial_ci(counts["format_failure"], n)
    out = {"n": n, **counts, "accuracy": acc, "ci_low": lo, "ci_high": hi,
           "answered": answered, "accuracy_answered": acc_ans, "answered_ci_low": lo_ans,
           "answered_ci_high": hi_ans, "format_failure_rate": ff, "format_failure_ci_low": ff_lo,
           "format_failure_ci_high": ff_hi}
    names = sorted({k for r in records for k in (r.get("verdicts") or {})})
    for name in names:
        k = sum((r.get("verdicts") or {}).get(name) == "correct" for r in records)
        f = sum((r.get("verdicts") or {}).get(name) == "format_failure" for r in records)
        p, plo, phi = metrics.binomial_ci(k, n)
        out[f"{name}_accuracy"], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = p, plo, phi
        out[f"{name}_format_failure"] = f
    values = [r["score_value"] for r in records if isinstance(r.get("score_value"), (int, float))]
    if values:
        m, mlo, mhi = metrics.bootstrap_ci(values, stat=np.mean)
        out.update(score_mean=m, score_ci_low=mlo, score_ci_high=mhi)
    out.update(
        ttft_s=_median(r.get("ttft_s") for r in records),
        decode_tok_s=_median(r.get("decode_tok_s") for r in records),
        n_tokens_mean=(statistics.fmean(r.get("n_tokens") or 0 for r in records) if n else None),
        hit_max_tokens=sum(r.get("finish_reason") == "length" for r in records),
        prefill_tok_s=_median(r.get("prefill_tok_s") for r in records),
    )
    return out


def summarize(records: list[dict], by: Iterable[str] = ("task", "target", "mode")) -> list[dict]:
    """One row per group (`by`: record fields, dotted for nested, e.g. "meta.level")."""
    by = list(by)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[tuple(_get(r, f) for f in by)].append(r)
    rows = []
    for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
        rows.append({**{f.split(".")[-1]: v for f, v in zip(by, key)},
                     **summarize_records(groups[key])})
    return rows


def write_section_provenance(results: SectionResults, params: dict, data: dict) -> Path:
    """build/runs/<run>/<section>/provenance.json: git, versions, hardware, params, data hashes
    (section-level, so sections sharing a run id do not overwrite each other's)."""
    from ..provenance import provenance
    from ..results import write_provenance

    return write_provenance(results.dir.name, provenance({"params": params, "data": data}),
                            root=results.dir.parent)


def section_summary(records: list[dict], params: dict, *, extra: dict | None = None,
                    by: Iterable[str] = ("task", "target", "mode"),
                    schema: type[QualitySummary] = QualitySummary) -> QualitySummary:
    """The summary.json of a quality section: rows by task × target × mode, totals, params, and
    the section's own breakdowns (`extra`, the fields of its `schema` in `slmstudy.schemas`)."""
    extra = dict(extra or {})
    extra.setdefault("model_comparison", model_comparison(records))
    extra.setdefault("engine_parity", engine_parity(records))
    return schema(rows=summarize(records, by), n_records=len(records),
                  verdicts=list(VERDICTS), params=params, **extra)


def _paired_table(rows: list[dict], columns: list[str], empty: str):
    """Paired rows as a DataFrame with the difference as "x [lo, hi]" (`empty` when none)."""
    import pandas as pd

    if not rows:
        return empty
    df = pd.DataFrame(rows)
    df["a − b [95% CI]"] = [f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                            for d, lo, hi in zip(df.accuracy_diff, df.diff_ci_low, df.diff_ci_high)]
    return df[columns + ["a − b [95% CI]"]].round(3)


_PAIR_COLUMNS = ["task", "mode", "a", "b", "n", "a_accuracy", "b_accuracy", "only_a_correct",
                 "only_b_correct", "mcnemar_p"]


def model_comparison_table(records: list[dict]):
    """:func:`model_comparison` as a DataFrame (a sentence when no two models scored the same
    items)."""
    return _paired_table(model_comparison(records), _PAIR_COLUMNS,
                         "no two models scored the same items under the same protocol")


def _paired(records: list[dict], same_model: bool) -> list[dict]:
    """Every pair of targets that scored the same items under one task and mode — of different
    models (`same_model=False`) or of one model on different engines (True) — with each one's
    accuracy on the shared items, the items only one got right, McNemar's exact test on those,
    the paired difference (a − b) with its 95% interval, and how often the two read the same
    answer (`extracted` equal; for log-likelihood, the same letter)."""
    by: dict[tuple[str, str, str], dict[str, dict]] = defaultdict(dict)
    model_of: dict[str, str] = {}
    for r in records:
        by[(r["task"], r["mode"], r["target"])][r["sample_id"]] = r
        model_of[r["target"]] = r.get("model") or r["target"]
    rows = []
    for task, mode in sorted({(t, m) for t, m, _ in by}):
        targets = sorted(g for t, m, g in by if (t, m) == (task, mode))
        for i, a in enumerate(targets):
            for b in targets[i + 1:]:
                if (model_of[a] == model_of[b]) != same_model:
                    continue
                ra, rb = by[(task, mode, a)], by[(task, mode, b)]
                ids = sorted(set(ra) & set(rb))
                if not ids:
                    continue
                ca = {s: ra[s].get("verdict") == "correct" for s in ids}
                cb = {s: rb[s].get("verdict") == "correct" for s in ids}
                only_a = sum(ca[s] and not cb[s] for s in ids)
                only_b = sum(cb[s] and not ca[s] for s in ids)
                same = sum(ra[s].get("extracted") == rb[s].get("extracted") for s in ids)
                diff, lo, hi = metrics.paired_difference_ci(only_a, only_b, len(ids))
                rows.append({"task": task, "mode": mode, "a": a, "b": b, "n": len(ids),
                             "a_accuracy": sum(ca.values()) / len(ids),
                             "b_accuracy": sum(cb.values()) / len(ids),
                             "only_a_correct": only_a, "only_b_correct": only_b,
                             "same_answer": same, "same_answer_rate": same / len(ids),
                             "mcnemar_p": metrics.mcnemar_exact(only_a, only_b),
                             "accuracy_diff": diff, "diff_ci_low": lo, "diff_ci_high": hi})
    return rows


def model_comparison(records: list[dict]) -> list[dict]:
    """Two models on the same items: for each task and mode, every pair of targets whose models
    differ, over the sample ids both scored — each one's accuracy, the items only one got
    right, McNemar's exact test on those, and the paired difference (a − b) with its 95%
    interval (`metrics.paired_difference_ci`). Paired, because both answered the same items:
    the interval is narrower than the difference of two independent Wilson intervals."""
    return _paired(records, same_model=False)


def engine_parity(records: list[dict]) -> list[dict]:
    """One model on two engines, the same items and prompt ids, greedy: for each task and mode,
    every pair of targets of one model — how often both read the same answer, and whether the
    accuracy differs (McNemar's exact test, paired 95% interval). No harness publishes this;
    a quantized GGUF against float weights is expected to differ on some items."""
    return _paired(records, same_model=True)


def engine_parity_table(records: list[dict]):
    """:func:`engine_parity` as a DataFrame (a sentence when no model ran on two engines)."""
    return _paired_table(engine_parity(records), _PAIR_COLUMNS[:5] + ["same_answer_rate"] + _PAIR_COLUMNS[5:],
                         "no model scored the same items on two engines under the same protocol")
