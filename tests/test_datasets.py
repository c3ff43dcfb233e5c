"""Benchmark data: sha256 verification, clear errors, loaders' counts, seeded subsets."""

import hashlib
import json
import shutil
from collections import Counter

import pytest

from slmstudy import datasets as D


@pytest.fixture(scope="module")
def real_dir():
    try:
        return D.data_dir()
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")


def _tmp_copy(real_dir, tmp_path, names=("gsm8k",)):
    """A data dir with the real MANIFEST.json and copies of some dataset folders."""
    shutil.copy(real_dir / D.MANIFEST_NAME, tmp_path / D.MANIFEST_NAME)
    for n in names:
        shutil.copytree(real_dir / n, tmp_path / n)
    return tmp_path


def test_every_file_matches_the_manifest(real_dir):
    for name, entry in D.manifest().items():
        paths = D.verify(name)
        assert set(paths) == set(entry["files"])
        for f, p in paths.items():
            assert hashlib.sha256(p.read_bytes()).hexdigest() == entry["files"][f]["sha256"]


def test_loader_counts_match_manifest(real_dir):
    items = lambda ds, f: D.manifest_items(ds, f)  # noqa: E731
    assert len(D.load_cmmlu("test")) == items("cmmlu", "test.jsonl") == 11582
    assert len(D.load_cmmlu("dev")) == items("cmmlu", "dev.jsonl") == 335
    assert len(D.load_ceval("val")) == items("ceval", "val.jsonl") == 1346
    assert len(D.load_ceval("dev")) == items("ceval", "dev.jsonl") == 260
    assert len(D.ceval_subjects()) == items("ceval", "subject_mapping.json") == 52
    assert len(D.load_gsm8k()) == items("gsm8k", "test.jsonl") == 1319
    assert len(D.load_math500()) == items("math500", "test.jsonl") == 500
    assert len(D.load_mbpp()) == items("mbpp", "sanitized-mbpp.jsonl") == 427
    for lang, n in (("python", 400), ("java", 100), ("javascript", 50)):
        rows = D.load_bfcl(lang)
        assert len(rows) == n == items("bfcl_simple", f"BFCL_v4_simple_{lang}.jsonl")
        assert all(r["ground_truth"] and r["function"] for r in rows)


def test_loader_fields_and_ids(real_dir):
    for rows in (D.load_cmmlu("test"), D.load_ceval("val"), D.load_gsm8k(), D.load_math500(),
                 D.load_mbpp(), D.load_bfcl("python"), D.load_humaneval()):
        ids = [r["id"] for r in rows]
        assert len(set(ids)) == len(ids)  # ids are unique: they are part of record keys
    assert len({r["subject"] for r in D.load_cmmlu("test")}) == 67
    assert all(r["answer"] in "ABCD" for r in D.load_ceval("val"))
    assert all(r["subject_zh"] != r["subject"] for r in D.load_ceval("val"))
    assert {r["level"] for r in D.load_math500()} == {1, 2, 3, 4, 5}
    mbpp = D.load_mbpp()
    assert all(r["entry_point"] for r in mbpp)
    assert len(D.load_mbpp(split="test")) == 257 and len(D.load_mbpp(split="prompt")) == 7


def test_humaneval_from_package_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = D.load_humaneval()
    assert len(rows) == 164 and rows[0]["id"] == "HumanEval/0"
    assert {"prompt", "test", "entry_point", "canonical_solution"} <= set(rows[0])


def test_missing_file_is_a_clear_error(real_dir, tmp_path, monkeypatch):
    d = _tmp_copy(real_dir, tmp_path)
    (d / "gsm8k" / "test.jsonl").unlink()
    monkeypatch.setenv("SLMSTUDY_DATA_DIR", str(d))
    with pytest.raises(D.DatasetError) as e:
        D.load_gsm8k()
    msg = str(e.value)
    expected = D.manifest(d)["gsm8k"]["files"]["test.jsonl"]["sha256"]
    assert "missing" in msg and str(d / "gsm8k" / "test.jsonl") in msg and expected in msg
    assert "SLMSTUDY_DATA_DIR" in msg and "data_dir" in msg


def test_changed_file_is_a_clear_error(real_dir, tmp_path):
    d = _tmp_copy(real_dir, tmp_path)
    f = d / "gsm8k" / "test.jsonl"
    lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
    f.write_text("".join(lines[:-1]), encoding="utf-8")  # one item dropped
    actual = hashlib.sha256(f.read_bytes()).hexdigest()
    expected = D.manifest(d)["gsm8k"]["files"]["test.jsonl"]["sha256"]
    with pytest.raises(D.DatasetError) as e:
        D.load_gsm8k(root=d)
    msg = str(e.value)
    assert str(f) in msg and actual in msg and expected in msg and "SLMSTUDY_DATA_DIR" in msg


def test_no_manifest_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMSTUDY_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(D.DatasetError, match="no MANIFEST.json in .*nowhere.*SLMSTUDY_DATA_DIR"):
        D.load_math500()
    with pytest.raises(D.DatasetError, match="data_dir"):
        D.data_dir(tmp_path)


def test_dataset_not_in_manifest(real_dir, tmp_path):
    d = _tmp_copy(real_dir, tmp_path)
    entries = [e for e in json.loads((d / D.MANIFEST_NAME).read_text()) if e["name"] != "mbpp"]
    (d / D.MANIFEST_NAME).write_text(json.dumps(entries))
    with pytest.raises(D.DatasetError, match="'mbpp' is not in"):
        D.load_mbpp(root=d)


def test_explicit_dir_beats_env(real_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMSTUDY_DATA_DIR", str(tmp_path / "wrong"))
    assert D.data_dir(real_dir) == real_dir
    assert len(D.load_gsm8k(root=real_dir)) == 1319


def _items(n_per, strata):
    return [{"id": f"{s}/{i}", "s": s} for s in strata for i in range(n_per)]


def test_stratified_subset_is_balanced_nested_and_seeded():
    items = _items(20, "ABCDE")
    sub = D.stratified_subset(items, 13, "s", seed=0)
    counts = Counter(r["s"] for r in sub)
    assert len(sub) == 13 and len({r["id"] for r in sub}) == 13
    assert set(counts.values()) <= {2, 3} and len(counts) == 5
    assert D.stratified_subset(items, 13, "s", seed=0) == sub  # deterministic
    assert D.stratified_subset(items, 30, "s", seed=0)[:13] == sub  # nested
    assert D.stratified_subset(items, 13, "s", seed=1) != sub
    assert len(D.stratified_subset(items, None, "s")) == 100
    assert len(D.stratified_subset(items, 1000, "s")) == 100


def test_stratified_subset_with_uneven_strata():
    items = _items(1, "A") + _items(10, "B")
    sub = D.stratified_subset(items, 5, "s", seed=3)
    assert Counter(r["s"] for r in sub) == {"A": 1, "B": 4}


def test_math500_levels_balanced(real_dir):
    sub = D.stratified_subset(D.load_math500(), 10, "level", seed=0)
    assert Counter(r["level"] for r in sub) == {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}


def test_proportional_subset_follows_the_strata_sizes_and_is_nested():
    items = [{"id": f"{lvl}/{i}", "level": lvl} for lvl, n in ((1, 43), (2, 90), (3, 105), (4, 128), (5, 134))
             for i in range(n)]
    for n in (10, 50, 100, 250):
        sub = D.proportional_subset(items, n, "level", seed=3)
        assert len(sub) == n and len({r["id"] for r in sub}) == n
        for lvl, size in ((1, 43), (2, 90), (3, 105), (4, 128), (5, 134)):
            got = sum(r["level"] == lvl for r in sub)
            assert abs(got - n * size / 500) <= 1, (n, lvl, got)
    assert D.proportional_subset(items, 100, "level", 3)[:40] == D.proportional_subset(items, 40, "level", 3)
    assert D.proportional_subset(items, 40, "level", 3) != D.proportional_subset(items, 40, "level", 4)
