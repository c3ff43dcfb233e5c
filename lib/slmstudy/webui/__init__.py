"""Open WebUI in front of the study's OpenAI-compatible servers, driven by API and by a browser.

The articles deploy "vLLM + Open WebUI" and describe the chat page. Here the same stack runs
offline on 127.0.0.1 and is measured:

    with WebUIStack(gguf_path, model_name="smollm2_135m") as stack:   # engine, then Open WebUI
        token = stack.ui.signup_admin()                                # first user = admin
        stack.ui.models(token)                                         # what the UI lists
        g = stack.ui.chat_stream(token, "What is 2+2?")                # TTFT through the UI's API
        turns = browser_chat(stack.ui, ["用一句话介绍北京。"], watch=stack.watch)  # Chromium

Open WebUI lives in its own environment (`make webui` → `.venv-webui/`, ~230 packages with pins
of their own); it is started as `open-webui serve` on a free port with a fresh DATA_DIR and an
environment that keeps it offline (no hub downloads, no telemetry, no Ollama, no title/tag
generation requests). Like the engine servers it runs in its own process group, asked to die with
its parent, and is torn down when the `with` block ends, also on an exception.

`StackWatch` samples, while the stack runs, the resident memory of each process tree (engine,
Open WebUI, browser) and every internet socket those processes hold: a remote address outside
127.0.0.0/8 is a request that left the machine.

    server     Open WebUI as a managed server: its own venv, an offline environment, API calls.
    enginelog  The engine's own log lines, matched to each request (llama.cpp's server log).
    watch      Memory and network watch of the stack's process trees while it runs.
    browser    Chats through the page in headless Chromium (webui_browser.py runs in the Open WebUI venv).
    stack      The whole stack: engine server, then Open WebUI, torn down together.
    articles   The articles' configuration of the stack, checked against the installed Open WebUI.
    measure    The measurement notebook 01 runs, its tables, figure and claims rows.
"""

from .articles import (  # noqa: F401
    _openai_form,
    env_var_read_by_open_webui,
    models_via_ollama_setting,
)
from .browser import (  # noqa: F401
    _kill_all,
    browser_chat,
)
from .enginelog import (  # noqa: F401
    _PERF_RE,
    _POST_RE,
    _PREFIX_RE,
    LLAMA_DONE,
    LogCursor,
    llamacpp_requests,
)
from .measure import (  # noqa: F401
    DEFAULT_QUESTIONS,
    WARMUP_QUESTION,
    _api_record,
    _engine_side,
    claims_rows,
    compose_screenshots,
    measure_stack,
    timings_table,
)
from .server import (  # noqa: F401
    ADMIN,
    BROWSER_SCRIPT,
    CHROMIUM,
    OPEN_WEBUI_VERSION,
    OpenWebUI,
    WebUINotInstalledError,
    check_installed,
    engine_stream,
    offline_env,
    stream_chat,
    webui_venv,
)
from .stack import (  # noqa: F401
    WebUIStack,
)
from .watch import (  # noqa: F401
    StackWatch,
    TreeStats,
    _is_loopback,
    alive,
)
