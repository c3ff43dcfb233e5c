"""ruff (configured in pyproject.toml) is clean on the package, the tests and the notebooks'
py:percent twins."""

import shutil
import subprocess
import sys

from slmstudy.paths import REPO_ROOT


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    proc = subprocess.run([*cmd, "check", "lib", "tests", "notebooks"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_no_engine_name_branches_outside_backends():
    """Sections branch on engine capabilities from the registry, never on engine names."""
    proc = subprocess.run(
        ["git", "grep", "-nE", r"(engine|backend\.name)\s*(==|!=)\s*[\"']|[\"'](transformers|vllm|llamacpp|ortgenai)"
         r"[\"']\s*(==|!=|in\b)", "--", "lib", "notebooks/*.py", ":!lib/slmstudy/backends"],
        cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.stdout == "", proc.stdout
