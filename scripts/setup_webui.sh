#!/usr/bin/env bash
# Install Open WebUI (the articles' chat front end) into its OWN virtual environment. Idempotent.
#   WEBUI_VENV (default .venv-webui)  where the environment goes
# Open WebUI pulls ~230 packages with pins of its own, so it never shares the study's .venv (whose
# pins are requirements/cpu.lock.txt). torch 2.13.0 (CPU build, from pip's configured find-links
# folder, or PyPI's CPU index elsewhere) goes in first, so the resolver does not pull a CUDA torch
# with ~15 nvidia packages. Playwright (the Python package only: its driver ships in the wheel)
# drives the Debian Chromium that scripts/setup_env.sh installs; `playwright install` is never run.
set -euo pipefail
cd "$(dirname "$0")/.."
WEBUI_VENV=${WEBUI_VENV:-.venv-webui}
OPEN_WEBUI_VERSION=0.12.4
PLAYWRIGHT_VERSION=1.65.2
TORCH_VERSION=2.13.0
STAMP="$WEBUI_VENV/.slmstudy-webui-$OPEN_WEBUI_VERSION-pw$PLAYWRIGHT_VERSION"
say() { printf '\033[1m[setup-webui]\033[0m %s\n' "$*"; }

if [ -f "$STAMP" ] && "$WEBUI_VENV/bin/python" -c "import open_webui, playwright" 2>/dev/null; then
  say "Open WebUI $OPEN_WEBUI_VERSION already installed in $WEBUI_VENV"
  exit 0
fi
if [ ! -x "$WEBUI_VENV/bin/python" ]; then
  say "creating $WEBUI_VENV with $(python3 --version)"
  python3 -m venv "$WEBUI_VENV"
fi
PIP="$WEBUI_VENV/bin/pip"
"$PIP" install -q --disable-pip-version-check pip==26.3 wheel
torch_ok="import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION+cpu')"
if ! "$WEBUI_VENV/bin/python" -c "$torch_ok" 2>/dev/null; then
  say "installing torch $TORCH_VERSION (CPU build)"
  "$PIP" install -q "torch==$TORCH_VERSION" \
    || "$PIP" install -q "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
fi
say "installing open-webui==$OPEN_WEBUI_VERSION and playwright==$PLAYWRIGHT_VERSION (~230 packages)"
# torch stays the CPU build: pinned again so the resolver keeps the installed one
"$PIP" install -q "torch==$TORCH_VERSION" "open-webui==$OPEN_WEBUI_VERSION" \
  "playwright==$PLAYWRIGHT_VERSION"
"$WEBUI_VENV/bin/python" - <<'EOF'
import importlib.metadata as md, torch
assert torch.__version__.endswith("+cpu"), f"expected the CPU torch, found {torch.__version__}"
print("open-webui", md.version("open-webui"), "| playwright", md.version("playwright"),
      "| torch", torch.__version__)
EOF
[ -x /usr/bin/chromium ] \
  || say "WARNING: /usr/bin/chromium missing (make setup installs it); browser steps will fail"
rm -f "$WEBUI_VENV"/.slmstudy-webui-*
touch "$STAMP"
say "Open WebUI ready: $WEBUI_VENV/bin/open-webui"
