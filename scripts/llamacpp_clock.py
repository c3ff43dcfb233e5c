"""Our clock against llama.cpp's own timers on the embedded model, for both llama.cpp loops.

    .venv/bin/python scripts/llamacpp_clock.py [--reps 4] [--threads 2]

Per loop ("generate": Llama.generate; "raw": llama_decode + llama.cpp's C sampler, each call
timed), a 512-token prompt and 64 forced tokens, the first request a warm-up: the median gap of
our TTFT to the engine's (prompt eval time, + the first sampler call for raw) and of our decode
window (first → last token) to the engine's (t_eval, + the sampler calls for raw), and whether
they agree within 3% or 1 ms (`slmstudy.speed.clock.within`).
"""

import argparse

from slmstudy.backends import registry
from slmstudy.backends.base import GenRequest
from slmstudy.speed import clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=4, help="requests per loop, the first a warm-up")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    spec = registry.get("llamacpp")
    ids = list(range(1000, 1512))
    print(f"{'loop':9} {'TTFT ours':>10} {'engine':>9} {'gap':>8}   {'decode ours':>11} {'engine':>9} "
          f"{'gap':>7}   agree (TTFT, decode)")
    for loop in ("generate", "raw"):
        with spec.backend(spec.form.embedded(), options={"loop": loop, "n_threads": a.threads,
                                                         "n_ctx": 2048}) as b:
            r = clock.repeated_agreement(
                lambda: b.generate_one(GenRequest(prompt_ids=ids, max_tokens=64, force_length=True)),
                reps=a.reps - 1)
        print(f"{loop:9} {r['ours_ttft_s'] * 1e3:8.1f}ms {r['engine_ttft_s'] * 1e3:7.1f}ms "
              f"{(r['ours_ttft_s'] - r['engine_ttft_s']) * 1e3:6.2f}ms   "
              f"{r['ours_decode_tok_s']:8.1f}t/s {r['engine_decode_tok_s']:6.1f}t/s "
              f"{r['decode_window_gap']:7.2%}   {r['ttft_ok']}, {r['decode_ok']}")


if __name__ == "__main__":
    main()
