"""BFCL's own protocol for the simple (Python) category: its prompt, its decoder, its AST checker.

Follows the Berkeley Function Calling Leaderboard at the commit the study's data comes from
(ShishirPatil/gorilla 6ea5797, `berkeley-function-call-leaderboard/bfcl_eval/`, BFCL v4), for a
model run in prompting mode (no native tool calls), as its OSS handler runs local models:

- **prompt** (`constants/default_prompts.py`, `model_handler/utils.py formulate_system_prompt`,
  default format `ret_fmt=python&tool_call_tag=False&func_doc_fmt=json&prompt_fmt=plaintext&
  style=classic`): the "classic" persona and task (joined without a space, as its plaintext
  template joins them), the Python call format, the multi-turn paragraph, and the function docs
  as `json.dumps(functions, indent=4)` after `utils._func_doc_language_specific_pre_processing`
  (" Note that the provided function is in Python 3 syntax." appended to each description); as
  a system message inserted before the question (or prepended to its own system message with
  a blank line), then the model's chat template;
- **decoder** (`default_decode_ast_prompting` → `ast_parse` → `resolve_ast_call`): the reply
  stripped of backticks, newlines and spaces, wrapped in `[...]`, parsed as one Python
  expression whose elements must be calls; argument values resolved by AST node type. BFCL
  evaluates `BinOp` values with `eval`; here only arithmetic on numeric literals is computed
  (:func:`_arith`), anything else in a `BinOp` is a decode failure — the model's text is never
  executed in the study's process;
- **checker** (`eval_checker/ast_eval/ast_checker.py`, simple category, Python): exactly one
  call; the function name as written (no `_`-for-`.` mapping: local models do not get it);
  every required parameter; no parameter outside the function or the possible answer; BFCL's
  type check (int accepted for float, tuple as list, nested element types, the "variable"
  rule); strings compared after `standardize_string`, lists element-wise after it, dicts and
  lists of dicts key by key, other values by `in` over the possible answers; an omitted
  parameter must have "" among its possible answers.

BFCL's "simple" score is the unweighted mean of simple_python, simple_java and
simple_javascript; Java and JavaScript need BFCL's tree-sitter parsers and type converters,
not reproduced yet (those languages still run the study's JSON protocol, `study/bfcl-simple`).
"""

from __future__ import annotations

import ast
import copy
import json
import operator
from typing import Any

from .runner import Sample, Score, Task
from .structured import standardize_string  # BFCL's ast_checker.standardize_string

#: bfcl_eval/constants/default_prompts.py, style "classic", plaintext template, Python calls
_PERSONA = "You are an expert in composing functions."
_TASK = ("You are given a question and a set of possible functions. Based on the question, you "
         "will need to make one or more function/tool calls to achieve the purpose. If none of "
         "the functions can be used, point it out. If the given question lacks the parameters "
         "required by the function, also point it out.")
_OUTPUT_FORMAT = ("[func_name1(params_name1=params_value1, params_name2=params_value2...), "
                  "func_name2(params)]")
_TOOL_CALL = ("You should only return the function calls in your response.\n\nIf you decide to "
              "invoke any of the function(s), you MUST put it in the format of {output_format}. "
              "{param_types} You SHOULD NOT include any other text in the response.")
_MULTITURN = ("At each turn, you should try your best to complete the tasks requested by the user "
              "within the current turn. Continue to output functions to call until you have "
              "fulfilled the user's request to the best of your ability. Once you have no more "
              "functions to call, the system will consider the current turn complete and proceed "
              "to the next turn or task.")
_AVAILABLE = "Here is a list of functions in {format} format that you can invoke.\n{functions}\n"
_PLAINTEXT = "{persona}{task}\n\n{tool_call_format}\n\n{multiturn_behavior}\n\n{available_tools}"
PYTHON_HINT = " Note that the provided function is in Python 3 syntax."
BFCL_COMMIT = "6ea57973c7a6097fd7c5915698c54c17c5b1b6c8"


def system_prompt(functions: list[dict]) -> str:
    """BFCL's default system prompt for these (Python) function docs."""
    docs = copy.deepcopy(functions)
    for f in docs:
        f["description"] = f["description"] + PYTHON_HINT
    return _PLAINTEXT.format(
        persona=_PERSONA, task=_TASK,
        tool_call_format=_TOOL_CALL.format(output_format=_OUTPUT_FORMAT, param_types=""),
        multiturn_behavior=_MULTITURN,
        available_tools=_AVAILABLE.format(format="json", functions=json.dumps(docs, indent=4)))


def bfcl_messages(item: dict) -> list[dict]:
    """The first turn with BFCL's system prompt in front (system_prompt_pre_processing_chat_model)."""
    turn = copy.deepcopy(item["question"][0])
    sp = system_prompt(item["function"])
    if turn and turn[0]["role"] == "system":
        turn[0]["content"] = sp + "\n\n" + turn[0]["content"]
        return turn
    return [{"role": "system", "content": sp}, *turn]


# ------------------------------------------------------------------------------ decoder

class DecodeError(ValueError):
    """The reply is not a list of Python calls BFCL's decoder can read."""


_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
          ast.Pow: operator.pow}


def _arith(node: ast.AST) -> int | float:
    """A BinOp of numeric literals, computed (BFCL evals the unparsed expression)."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arith(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        left, right = _arith(node.left), _arith(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise DecodeError("exponent too large to compute")
        return _ARITH[type(node.op)](left, right)
    raise DecodeError(f"a {type(node).__name__} inside an arithmetic value is not computed here")


def _resolve_value(value: ast.AST) -> Any:
    """bfcl_eval/model_handler/utils.py resolve_ast_by_type, node type by node type."""
    if isinstance(value, ast.Constant):
        return "..." if value.value is Ellipsis else value.value
    if isinstance(value, ast.UnaryOp):
        if not isinstance(value.operand, ast.Constant):
            raise DecodeError("unary operator on a non-literal")
        return -value.operand.value  # as BFCL: any unary operator negates
    if isinstance(value, ast.List):
        return [_resolve_value(v) for v in value.elts]
    if isinstance(value, ast.Dict):
        return {_resolve_value(k): _resolve_value(v) for k, v in zip(value.keys, value.values)}
    if isinstance(value, ast.BinOp):
        return _arith(value)
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.Call):
        return ast.unparse(value) if not value.keywords else _resolve_call(value)
    if isinstance(value, ast.Tuple):
        return tuple(_resolve_value(v) for v in value.elts)
    if isinstance(value, ast.Subscript):
        return ast.unparse(value.value) + "[" + ast.unparse(value.slice) + "]"
    raise DecodeError(f"unsupported AST type: {type(value).__name__}")


def _resolve_call(elem: ast.Call) -> dict:
    parts = []
    f = elem.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return {".".join(reversed(parts)): {kw.arg: _resolve_value(kw.value) for kw in elem.keywords}}


def decode_python_calls(text: str) -> list[dict]:
    """`[{function name: {parameter: value}}, ...]` from a reply, as BFCL's
    default_decode_ast_prompting + ast_parse read it; DecodeError where they fail."""
    s = (text or "").strip("`\n ")
    if not s.startswith("["):
        s = "[" + s
    if not s.endswith("]"):
        s = s + "]"
    try:
        parsed = ast.parse(s.strip().strip("'"), mode="eval")
    except SyntaxError as e:
        raise DecodeError(f"invalid syntax: {e.msg}") from None
    body = parsed.body
    if isinstance(body, ast.Call):
        return [_resolve_call(body)]
    elts = getattr(body, "elts", None)
    if elts is None or not all(isinstance(e, ast.Call) for e in elts):
        raise DecodeError("the reply is not a list of function calls")
    return [_resolve_call(e) for e in elts]


def is_function_call_list(decoded: Any) -> bool:
    """utils.is_function_calling_format_output: a list of {name: {params}} with one key each."""
    return isinstance(decoded, list) and all(
        isinstance(d, dict) and len(d) == 1 and isinstance(next(iter(d.values())), dict)
        for d in decoded)


# ------------------------------------------------------------------------------ checker

_PY_TYPES = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
             "tuple": list, "dict": dict, "any": str}
_NESTED = ("array", "tuple")


def _answer_type(possible: list):
    return next((type(a) for a in possible if a != ""), None)


def _type_check(value, possible: list, expected: type, nested: type | None) -> tuple[bool, bool]:
    """(valid, is_variable) as ast_checker.type_checker (one level of nesting)."""
    ptype = _answer_type(possible)
    is_variable = ptype is not None and ptype is not expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable
        for item in possible:
            # BFCL's flag stays True for a possible answer that is not a list (e.g. "")
            if not isinstance(item, list) or all(_type_check(v, item, nested, None)[0] for v in value):
                return True, is_variable
        return False, is_variable  # nested check failed: BFCL returns invalid whatever follows
    if ptype is not None and type(value) is ptype:
        return True, True
    return False, is_variable


def _std(v):
    return standardize_string(v) if isinstance(v, str) else v


def _dict_ok(value: dict, possible: list) -> bool:
    for answer in possible:
        if answer == "":
            continue
        if all(k in answer and _std(v) in [_std(a) for a in answer[k]] for k, v in value.items()) \
                and all(k in value or "" in acc for k, acc in answer.items()):
            return True
    return False


def check_simple(function: dict, calls: list[dict], ground_truth: list[dict]) -> tuple[bool, str]:
    """(valid, error) of a decoded reply against one simple item, as BFCL's ast_checker."""
    if len(calls) != 1:
        return False, "simple_function_checker:wrong_count"
    name = function["name"]
    (possible,) = ground_truth[0].values()
    if name not in calls[0]:
        return False, f"wrong_func_name: {name!r} not in the output"
    params = calls[0][name]
    props = function["parameters"]["properties"]
    for r in function["parameters"].get("required", []):
        if r not in params:
            return False, f"missing_required: {r!r}"
    for p, value in params.items():
        if p not in props or p not in possible:
            return False, f"unexpected_param: {p!r}"
        tdesc = props[p]["type"]
        expected = _PY_TYPES[tdesc]
        nested = _PY_TYPES[props[p]["items"]["type"]] if tdesc in _NESTED else None
        if tdesc == "tuple" and type(value) is tuple:
            value = list(value)
        if tdesc == "float" and type(value) is int:
            value = float(value)
        ok, is_variable = _type_check(value, possible[p], expected, nested)
        if not ok:
            return False, f"type_error: {p!r} expected {tdesc}, got {type(value).__name__}"
        if not is_variable:
            if expected is dict:
                if not _dict_ok(value, possible[p]):
                    return False, f"value_error:dict {p!r}"
                continue
            if expected is list and nested is dict:  # "" counts as an answer of length 0
                if not any(len(value) == len(a) and all(_dict_ok(v, [d]) for v, d in zip(value, a))
                           for a in possible[p]):
                    return False, f"value_error:list_dict {p!r}"
                continue
            if expected is str:
                if standardize_string(value) not in [standardize_string(a) for a in possible[p]
                                                     if isinstance(a, str)]:
                    return False, f"value_error:string {p}={value!r}"
                continue
            if expected is list:
                std = [_std(v) for v in value]  # BFCL iterates every answer: "" becomes []
                if std not in [[_std(x) for x in a] for a in possible[p]]:
                    return False, f"value_error:list {p}={value!r}"
                continue
        if value not in possible[p]:
            return False, f"value_error:others {p}={value!r}"
    for p, acc in possible.items():
        if p not in params and "" not in acc:
            return False, f"missing_optional: {p!r}"
    return True, "valid"


def score_bfcl_ast(text: str, sample: Sample) -> Score:
    """BFCL's verdict: a reply its decoder cannot read, or that is not a list of calls, is a
    format failure; otherwise the AST checker's valid / invalid."""
    try:
        calls = decode_python_calls(text)
    except (DecodeError, RecursionError, ValueError, TypeError) as e:
        return Score("format_failure", None, {"error": f"ast_decoder:decoder_failed: {e}"})
    if not is_function_call_list(calls):
        return Score("format_failure", calls, {"error": "ast_decoder:decoder_wrong_output_format"})
    ok, err = check_simple(sample.data["function"][0], calls, sample.gold)
    return Score("correct" if ok else "wrong", calls, {"error": err})


def bfcl_ast_task(items: list[dict], *, max_tokens: int = 128, name: str = "bfcl_ast_python") -> Task:
    """BFCL simple_python under BFCL's own prompt, decoder and AST checker."""
    bad = sorted({it["language"] for it in items} - {"python"})
    if bad:
        raise ValueError(f"BFCL's AST protocol is reproduced for Python only; got {bad} "
                         "(Java and JavaScript run the study's JSON protocol: structured.bfcl_task)")
    samples = [Sample(id=it["id"], messages=bfcl_messages(it), gold=it["ground_truth"],
                      meta={"language": it["language"]}, data={"function": it["function"]})
               for it in items]
    return Task(name=name, samples=samples, scorer=score_bfcl_ast, max_tokens=max_tokens,
                protocol="bfcl/simple_python", config={"bfcl_commit": BFCL_COMMIT})
