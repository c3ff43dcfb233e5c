"""Our clock against llama.cpp's own timers on the embedded model, for both llama.cpp loops.

    .venv/bin/python scripts/llamacpp_clock.py [--reps 4] [--threads 2]

Per loop ("generate": Llama.generate; "raw": llama_decode + llama.cpp's C sampler, each call
timed), a 512-token prompt and 64 forced tokens, the first request a warm-up: the median gap of
our TTFT to the engine's (prompt eval time, + the first sampler call for raw) and of our decode
window (first → last token) to the engine's (t_eval, + the sampler calls for raw), and whether
they agree within 3% or 1 ms (`slmstudy.speed.clock.within`).
"""

import argparse
import statistics

from slmstudy.backends import registry
from slmstudy.backends.base import GenRequest
from slmstudy.speed import clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    spec = registry.get("llamacpp")
    ids = list(range(1000, 1512))
    print(f"{'loop':9} {'TTFT ours':>10} {'engine':>9} {'gap':>8}   {'decode ours':>11} {'engine':>9} "
          f"{'gap':>7}   agree (TTFT, decode)")
    for loop in ("generate", "raw"):
        rows = []
        with spec.backend(spec.form.embedded(), options={"loop": loop, "n_threads": a.threads,
                                                         "n_ctx": 2048}) as b:
            for rep in range(a.reps):
                g = b.generate_one(GenRequest(prompt_ids=ids, max_tokens=64, force_length=True))
                e = clock.engine_clock({"engine_timings": g.engine_timings})
                n = len(g.token_times_ns)
                ours_w = (g.token_times_ns[-1] - g.token_times_ns[0]) / 1e9
                if rep:
                    rows.append((g.ttft_s, e["ttft_s"], ours_w, (n - 1) / e["decode_tok_s"], n))
        t_o, t_e, w_o, w_e = (statistics.median(r[i] for r in rows) for i in range(4))
        n = rows[0][4]
        print(f"{loop:9} {t_o * 1e3:8.1f}ms {t_e * 1e3:7.1f}ms {(t_o - t_e) * 1e3:6.2f}ms   "
              f"{(n - 1) / w_o:8.1f}t/s {(n - 1) / w_e:6.1f}t/s {w_o / w_e - 1:7.2%}   "
              f"{clock.within(t_o, t_e)}, {clock.within(w_o, w_e)}")


if __name__ == "__main__":
    main()
