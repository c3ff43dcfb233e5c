"""The study's BFCL checker (evals.bfcl) against bfcl_eval's own ast_checker and decoder, reply by
reply: every reference answer of the 400 simple_python items written as a call (the first and
the second accepted value of each parameter), and mutations of each (a parameter dropped,
int/float/str swapped, a value changed, case changed, an extra parameter, the name changed).
BFCL's code is imported from a gorilla checkout (not shipped here); its heavy imports (model
configs, the Java/JS converters) are stubbed:

    git clone https://github.com/ShishirPatil/gorilla && git -C gorilla checkout 6ea57973
    python scripts/bfcl_crosscheck.py --gorilla gorilla

Prints how many replies were checked and how many verdicts agree (valid / invalid / not
decodable), and the first replies that differ.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import collections
import importlib.util
import re
import sys
import types


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_reference(root: str):
    """(ast_checker module, Language enum, decode function) from bfcl_eval under `root`."""
    for pkg in ("bfcl_eval", "bfcl_eval.constants", "bfcl_eval.eval_checker",
                "bfcl_eval.eval_checker.ast_eval", "bfcl_eval.eval_checker.ast_eval.type_convertor",
                "bfcl_eval.model_handler"):
        sys.modules[pkg] = types.ModuleType(pkg)
    enums = _load("bfcl_eval.constants.enums", f"{root}/constants/enums.py")
    _load("bfcl_eval.constants.type_mappings", f"{root}/constants/type_mappings.py")
    config = types.ModuleType("bfcl_eval.constants.model_config")
    config.MODEL_CONFIG_MAPPING = collections.defaultdict(
        lambda: types.SimpleNamespace(underscore_to_dot=False))  # a local model in prompting mode
    sys.modules[config.__name__] = config
    for conv in ("java_type_converter", "js_type_converter"):
        stub = types.ModuleType(f"bfcl_eval.eval_checker.ast_eval.type_convertor.{conv}")
        setattr(stub, conv, None)
        sys.modules[stub.__name__] = stub
    checker = _load("bfcl_reference_ast_checker", f"{root}/eval_checker/ast_eval/ast_checker.py")
    # the decoder's two resolvers, taken from model_handler/utils.py without its imports
    tree = ast.parse(open(f"{root}/model_handler/utils.py", encoding="utf-8").read())
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef)
            and n.name in ("resolve_ast_call", "resolve_ast_by_type")]
    ns = {"ast": ast, "re": re, "builtins": builtins}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "bfcl_utils", "exec"), ns)

    def decode(text: str) -> list[dict]:  # default_decode_ast_prompting + ast_parse (Python)
        r = text.strip("`\n ")
        r = r if r.startswith("[") else "[" + r
        r = r if r.endswith("]") else r + "]"
        parsed = ast.parse(r.strip().strip("'"), mode="eval")
        if isinstance(parsed.body, ast.Call):
            return [ns["resolve_ast_call"](parsed.body)]
        out = []
        for e in parsed.body.elts:
            assert isinstance(e, ast.Call)
            out.append(ns["resolve_ast_call"](e))
        return out

    return checker, enums.Language, decode


def pick(o, k: int = 0):
    """The k-th accepted value of each parameter (or the last there is), recursively."""
    if isinstance(o, dict):
        out = {}
        for key, values in o.items():
            given = [x for x in values if x != ""]
            if given:
                out[key] = pick(given[min(k, len(given) - 1)], k)
        return out
    if isinstance(o, list):
        return [pick(e, k) if isinstance(e, dict) else e for e in o]
    return o


def mutations(name: str, args: dict):
    yield name, args
    for k, v in args.items():
        yield name, {p: x for p, x in args.items() if p != k}
        if isinstance(v, bool):
            yield name, {**args, k: not v}
        elif isinstance(v, int):
            yield from ((name, {**args, k: w}) for w in (float(v), v + 1, str(v)))
        elif isinstance(v, float):
            yield from ((name, {**args, k: w}) for w in (int(v), v * 2))
        elif isinstance(v, str):
            yield from ((name, {**args, k: w}) for w in (v.upper(), v + " x", [v]))
        elif isinstance(v, list):
            yield from ((name, {**args, k: w}) for w in (tuple(v), v[::-1], v[:1]))
        elif isinstance(v, dict):
            yield name, {**args, k: {**v, "zz": 1}}
    yield name, {**args, "extra_param": 1}
    yield name.upper(), args
    if "." in name:
        yield name.replace(".", "_"), args


def main(argv=None) -> None:
    from slmstudy import datasets as D
    from slmstudy.evals import bfcl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gorilla", required=True, help="a gorilla checkout (commit 6ea57973)")
    a = ap.parse_args(argv)
    checker, language, decode = load_reference(
        a.gorilla.rstrip("/") + "/berkeley-function-call-leaderboard/bfcl_eval")
    items = D.load_bfcl("python")
    task = bfcl.bfcl_ast_task(items)
    n, differ = 0, []
    for it, s in zip(items, task.samples):
        gname, acc = next(iter(it["ground_truth"][0].items()))
        for k in (0, 1):
            for name, args in mutations(gname, pick(acc, k)):
                text = f"[{name}({', '.join(f'{p}={v!r}' for p, v in args.items())})]"
                try:
                    theirs = checker.ast_checker(it["function"], decode(text), it["ground_truth"],
                                                 language.PYTHON, "simple_python", "local")["valid"]
                except Exception:  # their decoder or checker raised: not decodable
                    theirs = None
                verdict = task.scorer(text, s).verdict
                ours = {"correct": True, "format_failure": None}.get(verdict, False)
                n += 1
                if ours != theirs:
                    differ.append((it["id"], text[:120], theirs, verdict))
    print(f"{n} replies, {n - len(differ)} with the same verdict as bfcl_eval's ast_checker, "
          f"{len(differ)} differ")
    for d in differ[:15]:
        print(d)


if __name__ == "__main__":
    main()
