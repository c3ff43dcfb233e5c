#!/usr/bin/env bash
# Runs ON a lent CUDA machine (no internet) after ../shared/tools/gpu's stage.sh has unpacked vLLM
# and the llama-cpp-python sources: the speed section with params/gpu/02_speed.yaml, one group of
# steps per device call (each call ≤ 10 min), on whatever GPU the machine has. The snapshot is
# named after the device nvidia-smi reports and the UTC date (e.g. h200-2026-12-01).
#   bash scripts/gpu/speed.sh STEP[,STEP...]
#     transformers | vllm | llamacpp    python -m slmstudy.speed on that engine's targets
#     context                           python -m slmstudy.speed.context (params/gpu/02_context.yaml)
#     profile                           python -m slmstudy.profiling on SLM_PROFILE's model
#   SLM_MODELS=qwen25_7b,...   only these models' targets;   SLM_TARGETS=<name>,...  only these
#                              (the profile step honours SLM_TARGETS too)
#   SLM_STOP_AFTER=<s>         start no new target (or prompt length) after s seconds of this call
#   SLM_PARAMS=params/gpu-x2/02_speed.yaml   another speed scenario (default params/gpu/02_speed.yaml;
#                              the two-GPU one: vLLM tensor parallel); its run_id names the run folder
#   SLM_GGUF=qwen25_7b:F16,qwen25_7b:Q4_K_M   GGUF replicas written in the background (CPU) while
#                              the GPU works, for a later `llamacpp` call (default: these two)
# On first use it starts, in the background, the CUDA build of llama-cpp-python (~5 min) and the
# GGUF replicas. Records accumulate in $HOME/slm-runs/gpu (kept while the machine stays warm; a
# rerun resumes) and after every call the whole run folder is copied to $OUT/snapshot.tgz.
# Full sequence: scripts/gpu/README.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
S=${GPU_STAGE:-$HOME/.slm-gpu}
RUNS=$HOME/slm-runs
P=${SLM_PARAMS:-params/gpu/02_speed.yaml}
RUN_ID=$(sed -n 's/^run_id: *\([A-Za-z0-9_.-]*\).*/\1/p' "$P" | head -1)   # gpu for params/gpu/*.yaml
mkdir -p "$RUNS" "${OUT:=$PWD/build/gpu-out}"
T0=$(date +%s)
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" SLMSTUDY_CACHE=$HOME/slm-cache PYTHONUNBUFFERED=1
if [ -f COMMIT ]; then   # a tree exported with `git archive`: that commit, not a checkout above it
  export SLMSTUDY_GIT_COMMIT=$(cat COMMIT) GIT_CEILING_DIRECTORIES=$(dirname "$PWD")
fi
G=$S/build/llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py   # gguf-py ships in the llama.cpp sources
export PYTHONPATH="$G:$PYTHONPATH"
if [ ! -f "$S/llamacpp.done" ] && [ ! -f "$S/llamacpp.started" ] && [ -f "$S/build-llamacpp.sh" ]; then
  touch "$S/llamacpp.started"
  # niced, 10 of the cores: the engines' host loops measured meanwhile keep theirs
  # started from $HOME: the device tool replaces this call's tree when the call ends, and a job
  # whose working directory vanished fails (pip's os.getcwd(), seen 2026-12-02)
  (cd "$HOME" && JOBS=${JOBS:-10} setsid nice -n 19 bash "$S/build-llamacpp.sh" > "$S/llamacpp-build.log" 2>&1 < /dev/null &)
  echo "llama-cpp-python CUDA build started in the background"
  rm -rf "$S/lib" && cp -r lib "$S/lib" && cp scripts/gpu/gguf_prep.sh "$S/gguf_prep.sh"
  (cd "$HOME" && PYTHONPATH="$S/lib:$G" setsid nice -n 19 bash "$S/gguf_prep.sh" > "$S/gguf-prep.log" 2>&1 < /dev/null &)
  echo "GGUF replicas (${SLM_GGUF:-qwen25_7b:F16,qwen25_7b:Q4_K_M}) being written in the background"
fi
SLUG=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z' 'a-z' \
       | sed 's/^nvidia //' | awk '{print $1}')
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
[ "${NGPU:-1}" -gt 1 ] && SLUG="${NGPU}x${SLUG}"   # e.g. 2xh200-2026-12-03
echo "${SLUG:-gpu}-$(date -u +%F)" > "$OUT/snapshot_name.txt"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,power.limit --format=csv
  nvcc --version | tail -2
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
  python3 - <<'PY'
import importlib.metadata as md
for d in ("vllm", "flashinfer-python", "llama_cpp_python", "nvidia-ml-py", "pydantic"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        pass
PY
  echo "source commit ${SLMSTUDY_GIT_COMMIT:-unknown}"; } > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
left() { echo $(( ${SLM_STOP_AFTER:-100000} - ($(date +%s) - T0) )); }
FILTER=()
[ -n "${SLM_MODELS:-}" ] && FILTER+=(--models "$SLM_MODELS")
[ -n "${SLM_TARGETS:-}" ] && FILTER+=(--targets "$SLM_TARGETS")
# a copy of the records every 45 s: a call killed at its time limit still brings them back
mkdir -p "$RUNS/$RUN_ID"
( while sleep 45; do tar czf "$OUT/.snap.tgz" -C "$RUNS/$RUN_ID" . 2>/dev/null && mv "$OUT/.snap.tgz" "$OUT/snapshot.tgz"; done ) &
SNAP=$!
rc=0
for step in ${1//,/ }; do
  if [ "$(left)" -le 0 ]; then echo "=== $step: skipped (time limit of this call) ==="; continue; fi
  if [ "$step" = llamacpp ]; then
    for _ in $(seq 1 120); do [ -f "$S/llamacpp.done" ] || [ -f "$S/llamacpp.failed" ] && break; sleep 5; done
    [ -f "$S/llamacpp.done" ] || { echo "llama-cpp-python is not built (yet):"; tail -20 "$S/llamacpp-build.log"; rc=3; continue; }
    export PYTHONPATH="$S/site:$PYTHONPATH"
  fi
  echo "=== $step ($(left) s left) ==="
  case $step in
    context)
      python3 -m slmstudy.speed.context --params params/gpu/02_context.yaml --runs-root "$RUNS" \
        --stop-after "$(left)" || rc=$? ;;
    profile)
      [[ ${SLM_PROFILE_ENGINES:-vllm} == *llamacpp* ]] && export PYTHONPATH="$S/site:$PYTHONPATH"
      python3 -m slmstudy.profiling --params "$P" --engines "${SLM_PROFILE_ENGINES:-vllm}" \
        --models "${SLM_PROFILE:-qwen25_7b}" ${SLM_TARGETS:+--targets "$SLM_TARGETS"} --out "$RUNS/$RUN_ID/profile/decode_profile.jsonl" || rc=$? ;;
    *)
      python3 -m slmstudy.speed --params "$P" --runs-root "$RUNS" --engines "$step" \
        "${FILTER[@]}" --stop-after "$(left)" --keep-going --no-http || rc=$? ;;
  esac
done
kill $SNAP 2>/dev/null; wait $SNAP 2>/dev/null
cp "$OUT/device.txt" "$RUNS/$RUN_ID/device.txt" 2>/dev/null
for f in "$S/llamacpp-build.log" "$S/gguf-prep.log"; do [ -f "$f" ] && cp "$f" "$OUT/"; done
tar czf "$OUT/snapshot.tgz" -C "$RUNS/$RUN_ID" . && ls -la "$OUT"
echo "call took $(( $(date +%s) - T0 )) s"
exit $rc
