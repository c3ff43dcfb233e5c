#!/usr/bin/env bash
# Runs ON a lent CUDA machine (no internet) after the kit's stage.sh (vLLM, llama.cpp sources) and
# stage_files.sh (pieces of scripts/gpu/pack_quality.sh: the two real models' GGUF, the benchmark
# data, the scorers' packages): the quality sections 03, 04 and 05 with params/gpu/*.yaml — both
# models on the full sets, vLLM batching the samples, llama.cpp CUDA on a parity subset —
# through `python -m slmstudy.evals`, one group of steps per device call (each ≤ 10 min).
#   bash scripts/gpu/quality.sh STEP[,STEP...]      vllm | llamacpp  (that engine's targets)
#   SLM_SECTIONS=04_math,05_code,03_chinese_quality  the sections, in this order (the default)
#   SLM_STOP_AFTER=<s>   stop (SIGINT, then the records so far are kept) s seconds into the call
#   SLM_RESUME=<path>.tgz  an earlier call's snapshot.tgz, unpacked first on a fresh machine (carry it)
# The first call starts the CUDA build of llama-cpp-python in the background. Records accumulate
# in $HOME/slm-runs/gpu-quality (a rerun resumes: a sample already scored is not run again) and
# every 45 s and at the end the folder goes to $OUT/snapshot.tgz. Sequence: scripts/gpu/README.md.
set -uo pipefail
source "$(dirname "$0")/common.sh"
export SLMSTUDY_DATA_DIR=$HOME/slm-data PYTHONPATH="$PYTHONPATH:$HOME/slm-pylib"  # the scorers' packages last
export SLMSTUDY_TOKENIZERS=$HOME/slm-tokenizers   # the tokenizer files made where the pieces were packed
[ -f "$HOME/.slm-quality/unpacked" ] || { echo "the quality pieces are not unpacked: carry .gpu/q/p01 … with stage_files.sh first"; exit 2; }
RUN_ID=gpu-quality
# greedy decoding needs no FlashInfer sampling kernels: skip their JIT build on a fresh machine
export VLLM_USE_FLASHINFER_SAMPLER=0
if [ -n "${SLM_RESUME:-}" ] && [ ! -d "$RUNS/$RUN_ID" ]; then
  mkdir -p "$RUNS/$RUN_ID" && tar xzf "$SLM_RESUME" -C "$RUNS/$RUN_ID" && echo "resumed from $SLM_RESUME"
fi
SLM_SECTIONS=${SLM_SECTIONS:-04_math,05_code,03_chinese_quality}
start_llamacpp_build || true
write_device_txt
start_snapshots "$RUNS/$RUN_ID"
rc=0
for step in ${1//,/ }; do
  if [ "$step" = llamacpp ]; then need_llamacpp || { rc=3; continue; }; fi
  for sec in ${SLM_SECTIONS//,/ }; do
    if [ "$(left)" -le 5 ]; then echo "=== $step $sec: skipped (time limit of this call) ==="; continue; fi
    echo "=== $step $sec ($(left) s left) ==="
    timeout -s INT -k 20 "$(left)" python3 -m slmstudy.evals "$sec" --params "params/gpu/$sec.yaml" \
      --runs-root "$RUNS" --engines "$step" || rc=$?
    pkill -9 -f "EngineCore" 2>/dev/null || true   # an engine core a stopped run left holding GPU memory
  done
done
stop_snapshots "$RUNS/$RUN_ID"
exit $rc
