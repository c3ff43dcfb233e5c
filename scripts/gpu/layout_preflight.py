"""What this machine's GPUs can hold: the layout preflight (slmstudy.layout) of every target of a
speed scenario, one by one, plus Qwen2.5-72B at TP=1 — printed, and written to $OUT/layout_preflight.json.

    PYTHONPATH=lib python3 scripts/gpu/layout_preflight.py [params/gpu-x2/02_speed.yaml]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from slmstudy.errors import StudyError
from slmstudy.layout import visible_gpus
from slmstudy.params import SpeedParams, load_params
from slmstudy.speed.targets import preflight

path = sys.argv[1] if len(sys.argv) > 1 else "params/gpu-x2/02_speed.yaml"
params = load_params("02_speed", path)
extra = SpeedParams(device="cuda", targets=[{"label": "qwen25_72b/vllm/bfloat16-tp1/replica", "model": "qwen25_72b",
                                             "engine": "vllm", "dtype": "bfloat16", "replica": True}])
gpus = visible_gpus()
print("visible GPUs:", gpus)
out = {"params": path, "gpus": gpus, "targets": []}
for p, t in [(params, t) for t in params.targets] + [(extra, extra.targets[0])]:
    try:
        preflight(p.model_copy(update={"targets": [t]}))
        verdict = "holds"
    except StudyError as e:
        verdict = f"refused: {e}"
    print(f"{t.name()}: {verdict}")
    out["targets"].append({"target": t.name(), "verdict": verdict})
dest = Path(os.environ.get("OUT", "build")) / "layout_preflight.json"
dest.parent.mkdir(parents=True, exist_ok=True)
dest.write_text(json.dumps(out, indent=2))
