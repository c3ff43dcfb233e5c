#!/usr/bin/env bash
# Runs ON the lent H100 (no internet) after ../shared/tools/gpu's stage.sh has unpacked vLLM and
# the llama-cpp-python sources: the speed section on replicas of Qwen2.5-7B, Phi-3-mini and
# Qwen2.5-0.5B with params/h100/02_speed.yaml, one engine group per device call (each call ≤ 10 min).
#   bash scripts/gpu/h100_speed.sh ENGINE[,ENGINE...]      transformers | vllm | llamacpp
#   SLM_PROFILE=qwen25_7b bash scripts/gpu/h100_speed.sh ENGINE[,…]   per-token decode breakdown
#       (slmstudy.profiling: kernel time by kind, GPU idle, roofline) of that model's targets
# Starts the CUDA build of llama-cpp-python in the background on first use (~5 min; needed only for
# `llamacpp`). Records accumulate in $HOME/slm-runs (kept while the machine stays warm; a rerun
# resumes) and are copied to $OUT/runs after every call. Full sequence: scripts/gpu/README.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
S=${GPU_STAGE:-$HOME/.slm-gpu}
RUNS=$HOME/slm-runs
mkdir -p "$RUNS" "${OUT:=$PWD/build/gpu-out}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then   # small wheels the image lacks (psutil)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" SLMSTUDY_CACHE=$HOME/slm-cache
if [ ! -f "$S/llamacpp.done" ] && [ ! -f "$S/llamacpp.started" ] && [ -f "$S/build-llamacpp.sh" ]; then
  touch "$S/llamacpp.started"
  # niced, 12 of 16 cores: the Python host loop of the engines measured meanwhile keeps its core
  JOBS=${JOBS:-12} setsid nice -n 19 bash "$S/build-llamacpp.sh" > "$S/llamacpp-build.log" 2>&1 < /dev/null &
  echo "llama-cpp-python CUDA build started in the background"
fi
G=$S/build/llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py   # gguf-py ships in the llama.cpp sources
[ -d "$G" ] && export PYTHONPATH="$G:$PYTHONPATH"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -2
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
  python3 -c "import vllm; print('vllm', vllm.__version__)" 2>/dev/null
  python3 -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)" 2>/dev/null; } > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
rc=0
for eng in ${1//,/ }; do
  if [ "$eng" = llamacpp ]; then
    for _ in $(seq 1 120); do [ -f "$S/llamacpp.done" ] || [ -f "$S/llamacpp.failed" ] && break; sleep 5; done
    [ -f "$S/llamacpp.done" ] || { echo "llama-cpp-python is not built (yet):"; tail -20 "$S/llamacpp-build.log"; rc=3; continue; }
  fi
  echo "=== $eng ==="
  if [ -n "${SLM_PROFILE:-}" ]; then
    python3 -m slmstudy.profiling --params params/h100/02_speed.yaml --engines "$eng" \
      --models "$SLM_PROFILE" --out "$RUNS/h100/profile/decode_profile.jsonl" || rc=$?
  else
    python3 -m slmstudy.speed --params params/h100/02_speed.yaml --runs-root "$RUNS" --engines "$eng" --no-http || rc=$?
  fi
done
for f in "$RUNS"/h100/profile/*.json*; do [ -f "$f" ] && cp "$f" "$OUT/profile_$(basename "$f")"; done
# flat copy: the device tool brings back shallow paths only
for f in "$RUNS"/h100/provenance.json "$RUNS"/h100/02_speed/*.json "$RUNS"/h100/02_speed/*.jsonl; do
  [ -f "$f" ] && cp "$f" "$OUT/"
done
[ -f "$S/llamacpp-build.log" ] && cp "$S/llamacpp-build.log" "$OUT/"
exit $rc
