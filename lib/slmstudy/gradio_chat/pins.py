"""Article 003's dependency pins, checked against PyPI; the outcome is written as data.

    python -m slmstudy.gradio_chat.pins            # needs PyPI; writes data/article003_pins.yaml

Two questions, each answered by a command whose exact text, exit status and date are recorded
(the check needs the network, so CI reads the recorded outcome instead of running it):

1. Do the pins of §4.1 ("torch 2.9.1 transformers 4.57.3 gradio 6.2.0 accelerate 1.12.0")
   resolve together? `pip install --dry-run --ignore-installed --report` of the four pins, in a
   fresh resolution (nothing installed counts), for this interpreter's Python and platform.
2. Does §4.2's "Phi-3 需设置 trust_remote_code=True 才能正确加载" still hold on the pinned
   transformers? The 4.57.3 wheel (`pip download --no-deps`) is opened: does it ship its own Phi-3
   (`models/phi3/modeling_phi3.py`) and map model_type "phi3" to it in the Auto classes
   (`configuration_auto.py`: Phi3Config, `modeling_auto.py`: Phi3ForCausalLM)? With that mapping,
   `AutoModelForCausalLM.from_pretrained` loads a config of model_type "phi3" with the library's
   own class, without trust_remote_code. The same is checked on 4.40.2 and 4.41.0, the releases
   on either side of its arrival (4.41.0 is the first that ships it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

from ..paths import REPO_ROOT

PINS = ["torch==2.9.1", "transformers==4.57.3", "gradio==6.2.0", "accelerate==1.12.0"]
PHI3_VERSIONS = ["4.40.2", "4.41.0", "4.57.3"]
OUT = REPO_ROOT / "data" / "article003_pins.yaml"


def _run(cmd: list[str], timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)


def _shown(cmd: list[str], tmp: str) -> str:
    return shlex.join(cmd).replace(tmp, "<tmp>").replace(sys.executable, "python")


def check_resolve(tmp: str) -> dict:
    report = Path(tmp) / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
           "--disable-pip-version-check", "--report", str(report), *PINS]
    p = _run(cmd)
    out = {"command": _shown(cmd, tmp), "exit_code": p.returncode, "resolves": p.returncode == 0}
    if p.returncode == 0:
        inst = json.loads(report.read_text())["install"]
        versions = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in inst}
        out["n_packages"] = len(versions)
        out["resolved"] = {k: versions[k] for k in sorted(versions) if k in (
            "torch", "transformers", "gradio", "gradio-client", "accelerate", "huggingface-hub",
            "tokenizers", "starlette", "fastapi", "pillow", "pandas", "numpy", "safetensors")}
    else:
        lines = [ln for ln in (p.stdout + p.stderr).splitlines() if not ln.startswith("WARNING: Location")]
        out["error"] = "\n".join(lines[-15:])
    return out


def check_phi3(tmp: str, version: str) -> dict:
    d = Path(tmp) / f"tf-{version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", str(d), f"transformers=={version}"]
    p = _run(cmd)
    out = {"transformers": version, "command": _shown(cmd, tmp), "exit_code": p.returncode}
    wheels = list(d.glob("transformers-*.whl"))
    if p.returncode != 0 or not wheels:
        out["error"] = (p.stdout + p.stderr)[-1500:]
        return out
    with zipfile.ZipFile(wheels[0]) as z:
        names = set(z.namelist())
        conf = z.read("transformers/models/auto/configuration_auto.py").decode()
        mod = z.read("transformers/models/auto/modeling_auto.py").decode()
    out["wheel"] = wheels[0].name
    out["ships_modeling_phi3"] = "transformers/models/phi3/modeling_phi3.py" in names
    out["auto_config_maps_phi3"] = bool(re.search(r'\(\s*"phi3"\s*,\s*"Phi3Config"\s*\)', conf))
    out["auto_causal_lm_maps_phi3"] = bool(re.search(r'\(\s*"phi3"\s*,\s*"Phi3ForCausalLM"\s*\)', mod))
    out["native_phi3"] = all(out[k] for k in ("ships_modeling_phi3", "auto_config_maps_phi3",
                                              "auto_causal_lm_maps_phi3"))
    return out


def run_checks() -> dict:
    with tempfile.TemporaryDirectory(prefix="slm-pins-") as tmp:
        pip_v = _run([sys.executable, "-m", "pip", "--version"]).stdout.split()[1]
        return {
            "checked_on": dt.date.today().isoformat(),
            "by": "python -m slmstudy.gradio_chat.pins",
            "python": platform.python_version(), "platform": f"{sys.platform}-{platform.machine()}",
            "pip": pip_v, "index": "PyPI (pip's configured index)",
            "article": "003", "pins": PINS,
            "resolve": check_resolve(tmp),
            "phi3_native": [check_phi3(tmp, v) for v in PHI3_VERSIONS],
        }


def load(path: Path = OUT) -> dict:
    """The recorded outcome (data/article003_pins.yaml); a clear error if it was never written."""
    if not path.is_file():
        from ..errors import StudyError

        raise StudyError(f"{path} is missing: run `python -m slmstudy.gradio_chat.pins` on a "
                         "machine that reaches PyPI, and commit the file it writes")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="check article 003's pins against PyPI")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    res = run_checks()
    header = ("# Article 003's dependency pins checked against PyPI (written by "
              "`python -m slmstudy.gradio_chat.pins`; do not edit by hand).\n"
              "# The claims a003-4.1-pins-resolve and a003-4.2-phi3-trust-remote-code read it.\n")
    a.out.write_text(header + yaml.safe_dump(res, allow_unicode=True, sort_keys=False, width=100),
                     encoding="utf-8")
    print(yaml.safe_dump(res, allow_unicode=True, sort_keys=False, width=100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
