"""Article 003's deployment: a Gradio chat app over the study's engines, measured.

Article 003 (§4.1) deploys Qwen2.5-7B-Instruct as `python app.py`, a Gradio app over
`AutoModelForCausalLM`. Here the study's own app runs offline on 127.0.0.1 and is measured the way
the Open WebUI stack is (`slmstudy.webui`):

    with GradioStack(HF.embedded(), HF.embedded(), engine="transformers") as stack:
        r = engine_chat(stack.engine, "What is 2+2?", max_tokens=16)       # engine, no Gradio
        c = drive(stack.app.base_url, ["What is 2+2?"], mode="client")     # gradio_client
        b = drive(stack.app.base_url, ["What is 2+2?"], mode="browser")    # Chromium

Gradio cannot share the study's .venv (every current Gradio pins pillow<13; the article's 6.2.0
also huggingface-hub<2, pandas<3, starlette<1), so it lives in `.venv-gradio` (`make gradio`).
The model stays in the study's environment: `engine_server` loads it through `backends.registry`
(any engine; transformers by default, as in the article) and streams tokens to the app.

    engine_server  the study's engine as a small streaming HTTP server (runs in .venv).
    gradio_app     the Gradio ChatInterface (runs in .venv-gradio; imports nothing of slmstudy).
    gradio_driver  gradio_client and Chromium chats (runs in .venv-gradio).
    server         EngineServer and GradioApp as managed servers; the install check.
    stack          both, started and torn down together, watched (memory, sockets, PIDs).
    drive          runs gradio_driver.py and reads its result.
    measure        what notebook 01 runs: start-up, memory, TTFT per path, overhead table.
    pins           article 003's dependency pins checked against PyPI (writes data/).
"""

from .drive import drive  # noqa: F401
from .measure import (  # noqa: F401
    DEFAULT_QUESTIONS,
    claims_rows,
    measure_gradio,
    overhead_beside_webui,
    timings_table,
)
from .server import (  # noqa: F401
    GRADIO_VERSION,
    EngineServer,
    GradioApp,
    GradioNotInstalledError,
    check_installed,
    gradio_venv,
)
from .stack import GradioStack, engine_chat  # noqa: F401
