#!/usr/bin/env bash
# Runs ON the GPU machine, from a folder made by scripts/gpu/pack_quality.sh: parks this folder's
# piece; once all pieces are there, unpacks them into $HOME (slm-cache, slm-data, slm-pylib, slm-tokenizers) and
# checks every file's sha256. Then runs the command after `--`, if any.
#   bash <carried dir>/stage_files.sh [-- command ...]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
Q=$HOME/.slm-quality; mkdir -p "$Q/pieces"
cp "$HERE"/piece.* "$Q/pieces/"
want=$(cat "$HERE/PIECES"); have=$(ls "$Q"/pieces/piece.* | wc -l)
echo "quality pieces on the machine: $have/$want"
if [ "$have" -lt "$want" ]; then
  [ "${1:-}" = "--" ] && echo "earlier pieces are missing (the machine forgets them after ~30 s idle)"
  exit 0
fi
if [ ! -f "$Q/unpacked" ]; then
  t0=$(date +%s)
  cat "$Q"/pieces/piece.* | tar xf - -C "$HOME" || { echo "pieces damaged"; exit 4; }
  (cd "$HOME" && sha256sum -c --quiet SHA256) || { echo "checksum mismatch"; exit 4; }
  touch "$Q/unpacked"; echo "unpacked in $(( $(date +%s) - t0 )) s: $HOME/slm-cache, slm-data, slm-pylib, slm-tokenizers"
fi
if [ "${1:-}" = "--" ]; then shift; "$@"; fi
