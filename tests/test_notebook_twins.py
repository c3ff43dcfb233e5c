"""Every committed notebook is its jupytext `py:percent` twin (the `.py` is what reviewers read),
and is committed clean: no outputs, one `parameters` cell."""

import json

import jupytext
import pytest

from slmstudy.paths import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def _cells(nb):
    return [(c["cell_type"], "".join(c["source"]).strip()) for c in nb["cells"]]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_is_its_py_twin(ipynb):
    twin = ipynb.with_suffix(".py")
    assert twin.is_file(), f"{ipynb.name} has no jupytext twin {twin.name}"
    from_py = jupytext.read(twin)
    committed = json.loads(ipynb.read_text(encoding="utf-8"))
    assert _cells(committed) == _cells(from_py), (
        f"{ipynb.name} and {twin.name} differ: run `jupytext --sync {twin}` (or `--to ipynb`)")


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_clean_with_one_parameters_cell(ipynb):
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), ipynb.name
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in code) == 1


def test_each_notebook_on_its_own_is_the_default_scenario():
    """The parameter cell's defaults are params/default/<nb>.yaml: a notebook opened and run in
    JupyterLab (`make lab`) computes what `make study` computes."""
    import ast

    import papermill as pm

    from slmstudy import execute

    for name in execute.available_notebooks():
        defaults = pm.inspect_notebook(str(execute.NOTEBOOKS_DIR / f"{name}.ipynb"))
        for key, value in execute.read_params(name, "default", "default").items():
            assert key in defaults, f"{name}: params/default sets {key!r}, the parameter cell has no such name"
            assert ast.literal_eval(defaults[key]["default"]) == value, \
                f"{name}: parameter cell {key} = {defaults[key]['default']} but params/default/{name}.yaml: {value!r}"
