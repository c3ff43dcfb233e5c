"""Structured output: JSON validity, JSON-schema conformance, BFCL-simple function calling.

The model sees the function's JSON-schema docs (from BFCL) in a system message and is asked to
reply with one JSON object `{"name": <function>, "arguments": {...}}`. Three verdicts per sample:

- ``json_valid``: the reply is JSON — the whole output, or the body of a ```json / ``` fence,
  parses (else format failure; a list literal inside Python code does not count);
- ``schema_valid``: the arguments conform to the function's parameter schema (BFCL's types
  mapped to JSON Schema: dict→object, float→number, tuple→array, any→unconstrained; Java and
  JavaScript values are code strings in BFCL, so there only required / unknown keys count);
- primary: the call matches BFCL's possible answer, checked like BFCL's AST checker (simplified):
  same function name; every required parameter given; no parameter the function lacks; each
  given value equal to one of the accepted values (strings compared after BFCL's standardisation
  — case, spaces and `,./-_*^` ignored; ints accepted for floats; lists element-wise; dicts key by
  key); an omitted optional parameter must have "" among its accepted values.
  The call itself is read leniently (the first JSON object anywhere in the output, as a
  harness parsing a chatty reply would). No JSON function call found = format failure.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .extract import _fenced_blocks, extract_json
from .runner import Sample, Score, Task

BFCL_TEMPLATE = "bfcl-json-v1"

_PY_TYPES = {"string": "string", "integer": "integer", "float": "number", "number": "number",
             "boolean": "boolean", "array": "array", "tuple": "array", "dict": "object",
             "object": "object"}


def _schema_of(param: dict, typed: bool) -> dict:
    out: dict[str, Any] = {}
    t = param.get("type")
    if typed and t in _PY_TYPES:
        out["type"] = _PY_TYPES[t]
    if typed and "enum" in param:
        out["enum"] = param["enum"]
    if "items" in param:
        out["items"] = _schema_of(param["items"], typed)
    if "properties" in param:
        out["properties"] = {k: _schema_of(v, typed) for k, v in param["properties"].items()}
        if param.get("required"):
            out["required"] = list(param["required"])
    return out


def parameters_schema(function: dict, language: str = "python") -> dict:
    """JSON Schema (draft 7) for a BFCL function's arguments."""
    params = function.get("parameters") or {}
    typed = language == "python"
    props = {k: _schema_of(v, typed) for k, v in (params.get("properties") or {}).items()}
    return {"type": "object", "properties": props, "required": list(params.get("required", [])),
            "additionalProperties": False}


def schema_errors(instance: Any, schema: dict) -> list[str]:
    """Messages of every schema violation (empty list = conforms)."""
    import jsonschema

    v = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}"
            for e in v.iter_errors(instance)]


# ------------------------------------------------------------------------------ call parsing


def parse_call(obj: Any, known_names: list[str] = ()) -> tuple[str, dict] | None:
    """(function name, arguments) from the shapes models commonly emit, or None.

    Accepts {"name", "arguments"|"parameters"|"args"}, OpenAI's {"function": {...}} with
    arguments as an object or a JSON string, {<known function name>: {...}}, and a list of one
    such call.
    """
    if isinstance(obj, list):
        return parse_call(obj[0], known_names) if len(obj) == 1 else None
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict) and "name" in obj["function"]:
        return parse_call(obj["function"], known_names)
    if isinstance(obj.get("name"), str):
        for k in ("arguments", "parameters", "args"):
            if k in obj:
                args = obj[k]
                if isinstance(args, str):
                    try:
                        args = json.loads(args)
                    except json.JSONDecodeError:
                        return None
                return (obj["name"], args) if isinstance(args, dict) else None
        return obj["name"], {}
    if len(obj) == 1:
        (name, args), = obj.items()
        if name in known_names and isinstance(args, dict):
            return name, args
    return None


# ------------------------------------------------------------------------------ AST-ish match


def standardize_string(s: str) -> str:
    """BFCL's string normalisation: drop spaces and `,./-_*^`, lower-case, ' → "."""
    return re.sub(r"[ ,./\-_*^]", "", s).lower().replace("'", '"')


def values_equal(value: Any, accepted: Any) -> bool:
    if isinstance(accepted, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(accepted, bool) and value == accepted
    if isinstance(accepted, (int, float)) and isinstance(value, (int, float)):
        return math.isclose(float(value), float(accepted), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(accepted, str) and isinstance(value, str):
        return standardize_string(value) == standardize_string(accepted)
    if isinstance(accepted, (list, tuple)) and isinstance(value, (list, tuple)):
        return len(value) == len(accepted) and all(values_equal(v, a)
                                                   for v, a in zip(value, accepted))
    if isinstance(accepted, dict) and isinstance(value, dict):
        # BFCL nests possible answers: {key: [accepted values]}
        for k, acc in accepted.items():
            options = acc if isinstance(acc, list) else [acc]
            if k in value:
                if not any(values_equal(value[k], o) for o in options if o != ""):
                    return False
            elif "" not in options:
                return False
        return all(k in accepted for k in value)
    return False


def match_call(name: str, args: dict, function: dict, ground_truth: list[dict]) -> tuple[bool, str]:
    """(matches, reason) of one call against BFCL's possible answers for a simple item."""
    gt_name, accepted = next(iter(ground_truth[0].items()))
    if name != gt_name and name.replace(".", "_") != gt_name.replace(".", "_"):
        return False, f"function name {name!r} != {gt_name!r}"
    params = function.get("parameters") or {}
    props = params.get("properties") or {}
    for r in params.get("required", []):
        if r not in args:
            return False, f"missing required parameter {r!r}"
    for k, v in args.items():
        if k not in props:
            return False, f"unknown parameter {k!r}"
        options = accepted.get(k)
        if options is None:
            return False, f"parameter {k!r} is not in the possible answer"
        if not any(values_equal(v, o) for o in options if o != ""):
            return False, f"{k}={v!r} not among accepted {options!r}"
    for k, options in accepted.items():
        if k not in args and "" not in options:
            return False, f"parameter {k!r} omitted but has no default"
    return True, "match"


# ------------------------------------------------------------------------------ task


def bfcl_messages(item: dict) -> list[dict]:
    funcs = json.dumps(item["function"], ensure_ascii=False, indent=1)
    system = ("You are a function-calling assistant. You can call these functions "
              f"(JSON schema):\n{funcs}\n\nReply with ONLY one JSON object of the form "
              '{"name": "<function name>", "arguments": {"<parameter>": <value>, ...}} '
              "and nothing else.")
    return [{"role": "system", "content": system}, *item["question"][0]]


def reply_is_json(text: str | None) -> bool:
    """True when the whole reply, or the body of a ```json / bare ``` fence, is valid JSON."""
    if not text or not text.strip():
        return False
    chunks = [text.strip()] + [b.strip() for lang, b in _fenced_blocks(text)
                               if lang in ("json", "")]
    for chunk in chunks:
        try:
            json.loads(chunk, parse_constant=_no_constant)
            return True
        except ValueError:
            continue
    return False


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def score_bfcl(text: str, sample: Sample) -> Score:
    d = sample.data
    json_ok = "correct" if reply_is_json(text) else "format_failure"
    obj, err = extract_json(text)
    if obj is None:
        return Score("format_failure", None, {"json_error": err},
                     verdicts={"json_valid": json_ok, "schema_valid": "format_failure"})
    call = parse_call(obj, [f["name"] for f in d["function"]])
    if call is None:
        return Score("format_failure", obj, {"reason": "no function call in the JSON"},
                     verdicts={"json_valid": json_ok, "schema_valid": "format_failure"})
    name, args = call
    func = next((f for f in d["function"] if f["name"] == name), d["function"][0])
    errors = schema_errors(args, parameters_schema(func, d["language"]))
    ok, reason = match_call(name, args, func, sample.gold)
    return Score("correct" if ok else "wrong", {"name": name, "arguments": args},
                 {"reason": reason, "schema_errors": errors[:10]},
                 verdicts={"json_valid": json_ok,
                           "schema_valid": "wrong" if errors else "correct"})


def bfcl_task(items: list[dict], *, max_tokens: int = 128, name: str = "bfcl_simple") -> Task:
    samples = [Sample(id=it["id"], messages=bfcl_messages(it), gold=it["ground_truth"],
                      meta={"language": it["language"]},
                      data={"function": it["function"], "language": it["language"]})
               for it in items]
    return Task(name=name, samples=samples, scorer=score_bfcl, max_tokens=max_tokens,
                protocol="study/bfcl-simple", config={"template": BFCL_TEMPLATE})
