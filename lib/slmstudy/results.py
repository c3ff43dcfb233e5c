"""Results on disk: per-sample JSONL appended as samples complete, summaries derived from them.

    build/runs/<run-id>/<section>/samples.jsonl   one JSON record per line, flushed + fsynced
    build/runs/<run-id>/<section>/summary.json    derived, never typed in
    build/runs/<run-id>/provenance.json

A rerun with the same run id resumes: records whose key is already present are skipped.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from .errors import StudyError, validation_problems
from .paths import RESULTS_DIR, runs_dir


def _clean(obj):
    """JSON-safe: NaN/inf → None, numpy scalars → Python numbers, paths → str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return _clean(obj.item())
        except (ValueError, AttributeError):
            pass
    return obj


class SectionResults:
    """Append-only sample log of one notebook section, with resume by record key."""

    def __init__(self, run_id: str, section: str, root: Path | None = None):
        self.dir = (root or runs_dir()) / run_id / section
        self.dir.mkdir(parents=True, exist_ok=True)
        self.samples_path = self.dir / "samples.jsonl"
        self.summary_path = self.dir / "summary.json"

    def records(self, schema: type[BaseModel] | None = None) -> list[dict]:
        """Every record of the log, in append order; parsed through `schema` when given (a
        record that does not fit it is an error naming the line)."""
        if schema is not None:
            out = []
            for i, r in enumerate(self.records(), 1):
                try:
                    out.append(schema.model_validate(r).model_dump())
                except ValidationError as e:
                    raise StudyError(f"{self.samples_path}: record {i} ({r.get('key')!r}) does "
                                     f"not fit {schema.__name__}: {e}") from None
            return out
        if not self.samples_path.is_file():
            return []
        out = []
        with open(self.samples_path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill mid-write: ignored, the sample is redone
        return out

    def done_keys(self) -> set[str]:
        return {r["key"] for r in self.records() if "key" in r}

    def append(self, record: dict | BaseModel) -> None:
        if isinstance(record, BaseModel):
            record = record.model_dump()
        line = json.dumps(_clean(record), ensure_ascii=False)
        with open(self.samples_path, "a+b") as f:
            # a line cut by a kill mid-write is closed first, so this record stays readable
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write((line + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def extend(self, records: Iterable[dict]) -> None:
        for r in records:
            self.append(r)

    def write_summary(self, summary: dict | BaseModel) -> Path:
        if isinstance(summary, BaseModel):
            summary = summary.model_dump()
        tmp = self.summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_clean(summary), indent=2, ensure_ascii=False))
        os.replace(tmp, self.summary_path)
        return self.summary_path

    def read_summary(self) -> dict:
        """This section's summary.json, parsed through its schema (`schemas.SUMMARY_SCHEMAS`)."""
        return load_summary(self.summary_path)


def read_json(path: Path) -> dict | None:
    """A JSON file's content, or None when it is missing or not JSON (optional inputs of a page
    or a ledger: a section that did not run)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_summary(path: Path) -> dict:
    """A `<section>/summary.json`, parsed through the section's schema (older schema versions
    upgraded by `schemas.upgrade`); a section without a schema is read as plain JSON."""
    from . import schemas

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StudyError(f"{path}: cannot read the summary ({e}); rerun its notebook") from e
    section = path.parent.name
    if section not in schemas.SUMMARY_SCHEMAS:
        return data
    try:
        return schemas.parse_summary(section, data).model_dump()
    except ValidationError as e:
        raise StudyError(f"{path}: does not fit the {section} summary schema — "
                         f"{'; '.join(validation_problems(e, 'field')[:5])}; rerun its notebook to rewrite it") from e


def load_sections(run_root: Path) -> dict[str, dict]:
    """Every section summary of a run folder (or committed snapshot), by section name."""
    run_root = Path(run_root)
    return {p.parent.name: load_summary(p) for p in sorted(run_root.glob("*/summary.json"))} \
        if run_root.is_dir() else {}


@dataclass
class Snapshot:
    """A committed result set (results/<name>/): the layout of a run folder, plus provenance."""

    name: str
    path: Path
    provenance: dict
    sections: dict[str, dict]  # section -> its parsed summary.json

    @property
    def hardware(self) -> str:
        from .provenance import hardware_label

        return hardware_label(self.provenance)

    @property
    def device(self) -> str:
        from .provenance import device_label

        return device_label(self.provenance)


def load_snapshot(path: Path) -> Snapshot:
    path = Path(path)
    prov = path / "provenance.json"
    return Snapshot(name=path.name, path=path,
                    provenance=json.loads(prov.read_text(encoding="utf-8")) if prov.is_file() else {},
                    sections=load_sections(path))


def snapshot_dirs(root: Path | None = None) -> list[Path]:
    """The committed snapshots under results/ (folders with a provenance or a section summary)."""
    root = Path(root or RESULTS_DIR)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and ((p / "provenance.json").is_file() or any(p.glob("*/summary.json"))))


def write_provenance(run_id: str, block: dict, root: Path | None = None) -> Path:
    d = (root or runs_dir()) / run_id
    d.mkdir(parents=True, exist_ok=True)
    p = d / "provenance.json"
    merged = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
    merged.update(block)  # each notebook adds its own params_* key
    p.write_text(json.dumps(_clean(merged), indent=2, ensure_ascii=False))
    return p
