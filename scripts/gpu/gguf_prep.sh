#!/usr/bin/env bash
# Background job of scripts/gpu/speed.sh (CPU only): writes the GGUF replicas named in SLM_GGUF
# (model:format,...) into $SLMSTUDY_CACHE while the GPU measures something else. Float formats need
# only gguf-py (in the llama.cpp sources the build unpacks); quantized ones llama.cpp's quantizer,
# so they wait for the build. Touches $GPU_STAGE/gguf.done at the end.
set -uo pipefail
S=${GPU_STAGE:-$HOME/.slm-gpu}
G=$S/build/llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py
for _ in $(seq 1 60); do [ -d "$G" ] && break; sleep 2; done
IFS=, read -ra items <<< "${SLM_GGUF:-qwen25_7b:F16,qwen25_7b:Q4_K_M}"
for it in "${items[@]}"; do
  m=${it%%:*}; f=${it##*:}
  if [ "$f" != F16 ] && [ "$f" != F32 ]; then
    for _ in $(seq 1 200); do { [ -f "$S/llamacpp.done" ] || [ -f "$S/llamacpp.failed" ]; } && break; sleep 3; done
    export PYTHONPATH="$S/site:$PYTHONPATH"
  fi
  t=$(date +%s)
  python3 -c "from slmstudy.replicas import gguf_replica; print(gguf_replica('$m', '$f', progress=False))" \
    && echo "GGUF $m $f ready in $(( $(date +%s) - t )) s"
done
touch "$S/gguf.done"
