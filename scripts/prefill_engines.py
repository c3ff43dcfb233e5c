"""Prefill rate of the embedded model on llama.cpp (its GGUF) and transformers (its HF folder),
one prompt of the same token ids, median of `--reps` timed passes after one warm-up.

The quality sections' few-shot prompts (lm-eval gsm8k: ~800 tokens, 5 shots) spend most of their
time in prefill on this CPU; this says which engine prefills faster here, with the same threads:

    python scripts/prefill_engines.py --tokens 800 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time


def _ids(hf_dir, n: int) -> list[int]:
    from transformers import AutoTokenizer

    text = "Question: Natalia sold clips to 48 of her friends in April, and then half as many in May. "
    ids = AutoTokenizer.from_pretrained(hf_dir)(text * (n // 10 + 1)).input_ids[:n]
    if len(ids) < n:
        raise SystemExit(f"the prompt has only {len(ids)} tokens; ask for fewer with --tokens")
    return ids


def llamacpp_prefill(gguf, ids, threads: int, reps: int) -> list[float]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=max(2048, len(ids) + 16), n_threads=threads,
                n_threads_batch=threads, n_batch=512, verbose=False)
    out = []
    for _ in range(reps + 1):
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids)
        out.append(time.perf_counter() - t)
    return out[1:]


def transformers_prefill(hf_dir, ids, threads: int, reps: int) -> list[float]:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    x = torch.tensor([ids])
    out = []
    with torch.inference_mode():
        for _ in range(reps + 1):
            t = time.perf_counter()
            model(x, use_cache=True)
            out.append(time.perf_counter() - t)
    return out[1:]


def main(argv=None) -> None:
    from slmstudy.forms import GGUF, HF

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=800)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args(argv)
    hf, gguf = HF.embedded(), GGUF.embedded()
    ids = _ids(hf, a.tokens)
    for name, fn, path in (("llama.cpp (GGUF as shipped)", llamacpp_prefill, gguf),
                           ("transformers fp32", transformers_prefill, hf)):
        times = fn(path, ids, a.threads, a.reps)
        med = statistics.median(times)
        print(f"{name:28s} {len(ids)} tokens, {a.threads} threads: median {med:.2f} s "
              f"= {len(ids) / med:.0f} tok/s (passes: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
