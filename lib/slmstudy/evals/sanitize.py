"""EvalPlus-style sanitizing of generated Python: keep the code that compiles, the imports, and
the definitions the entry point needs; drop everything else (``if __name__ == "__main__":``
blocks, demo calls, ``print``s, ``sys.exit(main())`` endings, stray prose).

Follows ``evalplus/sanitize.py`` (EvalPlus, the reference HumanEval+/MBPP+ harness), written
here with the standard library's :mod:`ast` where EvalPlus uses tree-sitter:

1. ``code_extract``: the longest run of consecutive lines that parses, counted in non-blank lines;
2. from its top level: every ``import`` / ``from … import``, and the *first* definition of each
   name — a class, a function that contains a ``return`` somewhere, or a plain assignment whose
   target is one name (``x = …``, ``x: T = …``); a later definition of a taken name is dropped;
3. with an entry point: only the definitions reachable from it through the names they mention
   (breadth-first over the dependency graph); imports always stay;
4. output: the imports first, then the kept definitions in source order, each as written.

A function without ``return`` is dropped (EvalPlus's rule): that is how a prompt's
docstring-only stub gives way to the model's full definition of the same name.
"""

from __future__ import annotations

import ast
from collections import deque

PROTOCOL = "evalplus-sanitize"


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def code_extract(text: str) -> str:
    """The longest block of consecutive lines of `text` that parses (non-blank lines counted);
    the first such block on ties. Whole text when it parses (the common case, checked first)."""
    if _parses(text):
        return text
    lines = text.split("\n")
    best, best_len = (0, -1), 0
    for i in range(len(lines)):
        for j in range(i, len(lines)):
            length = sum(1 for line in lines[i:j + 1] if line.strip())
            if length > best_len and _parses("\n".join(lines[i:j + 1])):
                best, best_len = (i, j), length
    return "\n".join(lines[best[0]:best[1] + 1]) if best[1] >= 0 else ""


def _has_return(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(node))


def _assigned_name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return node.target.id
    return None


def _mentioned(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
        {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def sanitize(code: str, entry_point: str | None = None) -> str:
    """The sanitized program (see the module docstring); "" when nothing parses."""
    code = code_extract(code)
    if not code.strip():
        return ""
    lines = code.split("\n")
    tree = ast.parse(code)

    def source(node: ast.stmt) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(lines[start - 1:node.end_lineno])

    imports: list[ast.stmt] = []
    definitions: list[tuple[str, ast.stmt]] = []
    taken: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
            continue
        if isinstance(node, ast.ClassDef):
            name = node.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = node.name if _has_return(node) else None
        else:
            name = _assigned_name(node)
        if name is not None and name not in taken:
            definitions.append((name, node))
            taken.add(name)

    keep = {name for name, _ in definitions}
    if entry_point:
        deps = {name: _mentioned(node) for name, node in definitions}
        keep, queue = {entry_point}, deque([entry_point])
        while queue:
            for dep in deps.get(queue.popleft(), ()):
                if dep not in keep:
                    keep.add(dep)
                    queue.append(dep)
    parts = [source(n) for n in imports] + [source(n) for name, n in definitions if name in keep]
    return "\n".join(parts)
