# slmstudy — two commands do everything: `make study` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.slmstudy-installed
GRADIO_STAMP := .venv-gradio/.slmstudy-gradio-6.31.0-pw1.65.2
PARAMS ?= default

.PHONY: setup study grid test test-fast lock clean-cache models report screenshot lab webui gradio

setup: $(STAMP) $(GRADIO_STAMP)

$(STAMP): requirements/cpu.lock.txt pyproject.toml scripts/setup_env.sh
	VENV=$(VENV) bash scripts/setup_env.sh
	touch $(STAMP)

## webui: Open WebUI 0.12.4 (+ playwright for the browser checks) in its own venv, .venv-webui/
webui:
	bash scripts/setup_webui.sh

## gradio: Gradio 6.31.0 + gradio_client + playwright in their own venv, .venv-gradio/ (article 003's app)
gradio: $(GRADIO_STAMP)

$(GRADIO_STAMP): scripts/setup_gradio.sh
	bash scripts/setup_gradio.sh

## models: derive the embedded model's artifacts (GGUF, HF safetensors, ONNX int4) into the cache
models: setup
	$(PY) -m slmstudy.cli prepare

## study: run every notebook with params/$(PARAMS)/, build the book build/book/<run id>/html/index.html
##        and read it in headless Chromium (problems listed, screenshots in build/book/<run id>/screenshots/)
study: setup
	$(PY) -m slmstudy.cli run --params $(PARAMS)

## grid: the same study as cells on Ray, one per GPU or CPU slot, gathered into one book;
##       ADDRESS=host:port joins a running cluster (`ray start --head`), WORKERS=N cells at a time
grid: setup
	$(PY) -m slmstudy.cli grid --params $(PARAMS) $(if $(ADDRESS),--address $(ADDRESS)) $(if $(WORKERS),--workers $(WORKERS))

## report: rebuild the book from the executed notebooks of a run (RUN_ID, default the scenario's)
report: setup
	$(PY) -m slmstudy.cli report --run-id $(or $(RUN_ID),$(PARAMS))

## screenshot: read the built book in headless Chromium again; a PNG of every page
screenshot: setup
	$(PY) -m slmstudy.cli screenshot --run-id $(or $(RUN_ID),$(PARAMS))

## lab: JupyterLab on the notebooks with the scenario's parameters: PARAMS=default opens the paired
##      notebooks/ (.ipynb ⇄ .py); another scenario opens copies with its parameters injected
lab: setup
	$(PY) -m slmstudy.cli lab --params $(PARAMS)

## test: the whole test suite (unit + engines on the embedded model + notebooks with smoke params)
test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

## lock: re-freeze the environment after changing requirements/base.in
lock: setup
	$(VENV)/bin/pip freeze --exclude-editable | grep -v '^torch==' | \
	  (echo "# Fully pinned CPU environment (pip freeze of a working install; installed with --no-deps)."; \
	   echo "# Regenerate: make lock. Direct requirements and why: requirements/base.in"; cat) > requirements/cpu.lock.txt

clean-cache:
	rm -rf build/cache
