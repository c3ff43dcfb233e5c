"""BFCL's own protocol for simple_python: prompt text, decoder and AST checker (evals.bfcl)."""

import copy
import json

import pytest

from slmstudy import datasets as D
from slmstudy.evals import bfcl


@pytest.fixture(scope="module")
def python_items():
    try:
        return D.load_bfcl("python")
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")


def _pick(o):
    """The first accepted value, recursively (BFCL nests options in dicts and lists of dicts)."""
    if isinstance(o, dict):
        return {k: _pick(next(x for x in v if x != "")) for k, v in o.items() if any(x != "" for x in v)}
    if isinstance(o, list):
        return [_pick(e) if isinstance(e, dict) else e for e in o]
    return o


def _call_text(name: str, args: dict) -> str:
    return f"[{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})]"


def test_every_reference_answer_written_as_a_call_passes(python_items):
    task = bfcl.bfcl_ast_task(python_items)
    failed = []
    for s in task.samples:
        name, acc = next(iter(s.gold[0].items()))
        sc = task.scorer(_call_text(name, _pick(acc)), s)
        if sc.verdict != "correct":
            failed.append((s.id, sc.detail))
    assert len(task.samples) == 400 and not failed, failed[:5]


def test_the_prompt_is_bfcls_default_prompt(python_items):
    item = python_items[0]
    msgs = bfcl.bfcl_messages(item)
    assert msgs[0]["role"] == "system" and msgs[1:] == item["question"][0]
    sp = msgs[0]["content"]
    # the plaintext template joins persona and task without a space, as BFCL's does
    assert sp.startswith("You are an expert in composing functions.You are given a question")
    assert ("[func_name1(params_name1=params_value1, params_name2=params_value2...), "
            "func_name2(params)].  You SHOULD NOT") in sp  # the empty param_types leaves two spaces
    docs = copy.deepcopy(item["function"])  # BFCL: the hint appended, then json.dumps(indent=4)
    docs[0]["description"] += " Note that the provided function is in Python 3 syntax."
    assert sp.endswith("Here is a list of functions in json format that you can invoke.\n"
                       + json.dumps(docs, indent=4) + "\n")
    assert "Python 3 syntax" not in item["function"][0]["description"]  # the item is not modified
    with_system = dict(item, question=[[{"role": "system", "content": "Be brief."}, *item["question"][0]]])
    assert bfcl.bfcl_messages(with_system)[0]["content"].endswith("\n\nBe brief.")
    with pytest.raises(ValueError, match="Python only"):
        bfcl.bfcl_ast_task([dict(item, language="java")])


def test_decoder_reads_what_bfcls_decoder_reads():
    d = bfcl.decode_python_calls
    assert d("```\n[f(a=1, b='x')]\n```") == [{"f": {"a": 1, "b": "x"}}]
    assert d("math.gcd(a=4, b=6)") == [{"math.gcd": {"a": 4, "b": 6}}]  # brackets added
    assert d("[f(a=-3), g(x=[1, 2], y={'k': (1, 2)})]") == [{"f": {"a": -3}}, {"g": {"x": [1, 2], "y": {"k": (1, 2)}}}]
    assert d("[f(a=2**10 + 1, b=name, c=np.sum(x), d=arr[0])]") == [
        {"f": {"a": 1025, "b": "name", "c": "np.sum(x)", "d": "arr[0]"}}]
    for bad in ("The area is 25.", "[1, 2]", "[f(a=__import__('os').getpid() + 1)]", "f(a=lambda: 1)"):
        with pytest.raises(bfcl.DecodeError):
            d(bad)


def test_checker_follows_bfcl_semantics(python_items):
    item = python_items[0]  # calculate_triangle_area(base=10, height=5, unit='units' optional)
    task = bfcl.bfcl_ast_task([item])
    s = task.samples[0]

    def verdict(text):
        return task.scorer(text, s).verdict

    assert verdict("[calculate_triangle_area(base=10, height=5)]") == "correct"
    assert verdict("[calculate_triangle_area(base=10, height=5, unit='Units')]") == "correct"  # standardized
    assert verdict("[calculate_triangle_area(base=10.0, height=5)]") == "wrong"  # float for an integer
    assert verdict("[calculate_triangle_area(base='10', height=5)]") == "wrong"
    assert verdict("[calculate_triangle_area(base=10)]") == "wrong"  # required height missing
    assert verdict("[calculate_triangle_area(base=10, height=5, x=1)]") == "wrong"
    assert verdict("[calculate_triangle_area(base=10, height=5), calculate_triangle_area(base=1, height=1)]") == "wrong"
    assert verdict("[Calculate_Triangle_Area(base=10, height=5)]") == "wrong"  # the name as written
    assert verdict("The area is 25.") == "format_failure"
    assert verdict('{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}') == "format_failure"


def test_float_parameters_accept_ints_and_optional_parameters_need_an_empty_answer(python_items):
    float_items = [it for it in python_items
                   if any(p["type"] == "float" for p in it["function"][0]["parameters"]["properties"].values())]
    assert float_items
    it = float_items[0]
    task = bfcl.bfcl_ast_task([it])
    s = task.samples[0]
    name, acc = next(iter(s.gold[0].items()))
    args = _pick(acc)
    fparam = next(k for k, p in it["function"][0]["parameters"]["properties"].items()
                  if p["type"] == "float" and k in args)
    if float(args[fparam]).is_integer():
        args[fparam] = int(args[fparam])  # an int where BFCL expects float: accepted
        assert task.scorer(_call_text(name, args), s).verdict == "correct"
    omit = [k for k, v in acc.items() if "" not in v]
    args = _pick(acc)
    del args[omit[0]]
    assert task.scorer(_call_text(name, args), s).verdict == "wrong"
