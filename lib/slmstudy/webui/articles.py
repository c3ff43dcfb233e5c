"""The articles' configuration of the stack, checked against the installed Open WebUI."""

from __future__ import annotations

import re

from .server import OpenWebUI, check_installed


def env_var_read_by_open_webui(name: str, venv=None) -> list[str]:
    """Files of the installed Open WebUI backend that read environment variable `name` (a quoted
    string literal equal to it); [] = Open WebUI ignores that variable."""
    venv = check_installed(venv)
    pkgs = list((venv / "lib").glob("python3*/site-packages/open_webui"))
    hits = []
    pat = re.compile(r"""['"]%s['"]""" % re.escape(name))
    for pkg in pkgs:
        for f in pkg.rglob("*.py"):
            if pat.search(f.read_text(errors="replace")):
                hits.append(str(f.relative_to(pkg.parent)))
    return sorted(hits)


def models_via_ollama_setting(ui: OpenWebUI, token: str, url: str) -> list[str]:
    """Models Open WebUI lists when the engine URL is given to its *Ollama* connection (what
    `OLLAMA_API_BASE_URL=http://…:8000/v1` does) and the OpenAI connection is off. The settings
    are restored afterwards."""
    before = ui.connections(token)
    try:
        ui.set_connections(token, openai={**_openai_form(before["openai"]), "ENABLE_OPENAI_API": False},
                           ollama={"ENABLE_OLLAMA_API": True, "OLLAMA_BASE_URLS": [url],
                                   "OLLAMA_API_CONFIGS": {}})
        return ui.models(token)
    finally:
        ui.set_connections(token, openai=_openai_form(before["openai"]),
                           ollama={k: before["ollama"][k] for k in
                                   ("ENABLE_OLLAMA_API", "OLLAMA_BASE_URLS", "OLLAMA_API_CONFIGS")})


def _openai_form(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("ENABLE_OPENAI_API", "OPENAI_API_BASE_URLS", "OPENAI_API_KEYS",
                                "OPENAI_API_CONFIGS")}
