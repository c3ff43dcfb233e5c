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
source "$(dirname "$0")/common.sh"
P=${SLM_PARAMS:-params/gpu/02_speed.yaml}
RUN_ID=$(sed -n 's/^run_id: *\([A-Za-z0-9_.-]*\).*/\1/p' "$P" | head -1)   # gpu for params/gpu/*.yaml
if start_llamacpp_build; then
  rm -rf "$S/lib" && cp -r lib "$S/lib" && cp scripts/gpu/gguf_prep.sh "$S/gguf_prep.sh"
  (cd "$HOME" && PYTHONPATH="$S/lib:$G" setsid nice -n 19 bash "$S/gguf_prep.sh" > "$S/gguf-prep.log" 2>&1 < /dev/null &)
  echo "GGUF replicas (${SLM_GGUF:-qwen25_7b:F16,qwen25_7b:Q4_K_M}) being written in the background"
fi
write_device_txt
FILTER=()
[ -n "${SLM_MODELS:-}" ] && FILTER+=(--models "$SLM_MODELS")
[ -n "${SLM_TARGETS:-}" ] && FILTER+=(--targets "$SLM_TARGETS")
start_snapshots "$RUNS/$RUN_ID"
rc=0
for step in ${1//,/ }; do
  if [ "$(left)" -le 0 ]; then echo "=== $step: skipped (time limit of this call) ==="; continue; fi
  if [ "$step" = llamacpp ]; then need_llamacpp || { rc=3; continue; }; fi
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
stop_snapshots "$RUNS/$RUN_ID"
exit $rc
