"""The vendors' published benchmark scores (data/published_scores.yaml) and the rule that judges
an article's score claim against them: a claimed score is checked against the number the model's
makers report for that benchmark, with the document, table and row as its evidence."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ..paths import PROJECT_DATA_DIR
from .model import Claim, Verdict, _read_yaml_mapping, _validation_message
from .physics import format_claimed
from .vocabulary import COMPARISON_TOL, CONSISTENT, INCONSISTENT, NOT_TESTABLE, PUBLISHED_SCORE_TOL, LedgerError

PUBLISHED_PATH = PROJECT_DATA_DIR / "published_scores.yaml"
ARTIFACTS_PATH = PROJECT_DATA_DIR / "published_artifacts.yaml"
FAMILIES_PATH = PROJECT_DATA_DIR / "published_families.yaml"


class PublishedScore(BaseModel):
    """One score a vendor document prints for one of its models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str  # registry key
    benchmark: str  # the claims' benchmark name
    value: float  # points, 0-100
    source: str  # document
    table: str  # table (or passage) within it
    row: str  # the row's model name as printed

    def citation(self) -> str:
        return f"{self.source}, {self.table}, row {self.row}"


def _load_keyed(path: str | Path, list_key: str, cls, key_of) -> dict:
    """The entries of the YAML list `list_key` validated as `cls`, keyed by `key_of(entry)`;
    errors name the file, the entry and the key."""
    path = Path(path)
    raw = _read_yaml_mapping(path, list_key)
    if not isinstance(raw, list):
        raise LedgerError(f"{path}: '{list_key}' must be a list")
    out: dict = {}
    for i, entry in enumerate(raw):
        try:
            item = cls.model_validate(entry)
        except ValidationError as exc:
            raise LedgerError(f"{path}: {list_key}[{i}]: {_validation_message(exc)}") from None
        key = key_of(item)
        if key in out:
            raise LedgerError(f"{path}: {list_key}[{i}]: a second entry for {key}")
        out[key] = item
    return out


def load_published(path: str | Path = PUBLISHED_PATH) -> dict[tuple[str, str], PublishedScore]:
    """(model, benchmark) -> PublishedScore; errors name the file, the entry and the key."""
    return _load_keyed(path, "published", PublishedScore, lambda s: (s.model, s.benchmark))


@lru_cache(maxsize=1)
def _table() -> dict[tuple[str, str], PublishedScore]:
    return load_published()


def published_for(model: str | None) -> list[PublishedScore]:
    return [s for (m, _), s in _table().items() if m == model]


def judge_published(claim: Claim) -> Verdict | None:
    """A score claim against the vendor's published score for the same model and benchmark.

    '>'/'>=': the published score must reach the claimed one; '<'/'<=': stay below it; '~'/'=':
    within PUBLISHED_SCORE_TOL points (rounding). None when the vendor publishes no such score.
    """
    score = _table().get((claim.model, claim.benchmark)) if claim.model and claim.benchmark else None
    if score is None:
        return None
    p, c = score.value, claim.value
    if claim.relation in (">", ">="):
        ok = p > c if claim.relation == ">" else p >= c
    elif claim.relation in ("<", "<="):
        ok = p < c if claim.relation == "<" else p <= c
    else:
        ok = abs(p - c) <= PUBLISHED_SCORE_TOL
    evidence = (f"published: {p:g} ({score.citation()}); claimed {format_claimed(claim)}"
                + ("" if claim.relation not in ("~", "=") else f" (tolerance ±{PUBLISHED_SCORE_TOL:g} point)"))
    if not ok:
        evidence += ": the model's makers report a score the claim does not match"
    return Verdict(CONSISTENT if ok else INCONSISTENT, evidence, "published")


def not_published_reason(claim: Claim) -> str | None:
    """What the vendor does publish for the model, when it publishes nothing for this benchmark."""
    scores = published_for(claim.model)
    if not scores:
        return None
    listed = ", ".join(f"{s.benchmark} {s.value:g}" for s in scores)
    return (f"the vendor's documents recorded in data/published_scores.yaml report no {claim.benchmark} "
            f"score for this model (they give {listed}; {scores[0].source})")


def judge_close_to(claim: Claim) -> Verdict:
    """"Close to / on a par with <reference>" on a benchmark: the article's own score for its model
    (the claim's value) and the vendor's published one, each against the reference model's
    published score, within COMPARISON_TOL points."""
    table = _table()
    ref = table.get((claim.reference, claim.benchmark)) if claim.reference else None
    if ref is None:
        return Verdict(NOT_TESTABLE, f"no published {claim.benchmark} score for {claim.reference!r} in "
                       "data/published_scores.yaml", "none")
    own = table.get((claim.model, claim.benchmark))
    gaps = [f"the article's {claim.value:g} is {claim.value - ref.value:+.1f} points from it"]
    close = abs(claim.value - ref.value) <= COMPARISON_TOL
    if own is not None:
        gaps.append(f"the vendor's {own.value:g} ({own.source}) is {own.value - ref.value:+.1f}")
        close = close or abs(own.value - ref.value) <= COMPARISON_TOL
    evidence = (f"{claim.reference} published {ref.value:g} ({ref.citation()}); " + "; ".join(gaps)
                + f" (close = within ±{COMPARISON_TOL:g} points)")
    if close:
        return Verdict(CONSISTENT, evidence, "published")
    return Verdict(INCONSISTENT, evidence + ": the scores are not close; the claimed score and the "
                   "comparison contradict each other", "published")


# ---------------------------------------------------------------- the vendors' own weight files


class PublishedArtifact(BaseModel):
    """Weights in one format that a model's makers publish themselves (not a third-party conversion)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str  # registry key
    artifact: str  # "gguf", "onnx"
    repo: str  # the vendor's repository
    files: list[str]  # what it holds, as its file listing shows
    published_by: str  # the organisation and the first commit that added the files
    source: str  # where this was read

    def citation(self) -> str:
        return f"{self.repo} ({self.published_by}): {', '.join(self.files)}; {self.source}"


def load_artifacts(path: str | Path = ARTIFACTS_PATH) -> dict[tuple[str, str], PublishedArtifact]:
    """(model, artifact) -> PublishedArtifact; errors name the file, the entry and the key."""
    return _load_keyed(path, "artifacts", PublishedArtifact, lambda a: (a.model, a.artifact))


def judge_vendor_publishes(claim: Claim, table: dict[tuple[str, str], PublishedArtifact] | None = None) -> Verdict:
    """"Official GGUF: yes / no — convert it yourself" against the vendor's own repositories
    (data/published_artifacts.yaml). A claimed "no" is inconsistent when the vendor publishes
    the format; a claimed "yes" is consistent with an entry; without an entry the ledger does
    not know (absence is not recorded as evidence)."""
    table = load_artifacts() if table is None else table
    if not claim.artifact:
        raise LedgerError(f"claim {claim.id}: metric vendor_publishes needs `artifact` (gguf, onnx, ...)")
    entry = table.get((claim.model, claim.artifact))
    says = "publishes" if claim.value else "does not publish (convert it yourself)"
    if entry is None:
        return Verdict(NOT_TESTABLE, f"the claim: the vendor {says} {claim.artifact} weights; no vendor "
                       f"repository of that format is recorded in data/published_artifacts.yaml", "none")
    evidence = f"the claim: the vendor {says} {claim.artifact} weights; published: {entry.citation()}"
    if claim.value:
        return Verdict(CONSISTENT, evidence, "published")
    return Verdict(INCONSISTENT, evidence + ": the model's makers publish them", "published")


# ---------------------------------------------------------------- the sizes a family was released in


class PublishedFamily(BaseModel):
    """The parameter sizes a vendor released one model family in, as its model card states."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str  # key, e.g. llama3
    name: str  # as the vendor writes it
    sizes_b: list[float]  # billions of parameters, as the card names the sizes
    source: str  # document
    passage: str  # the sentence that lists the sizes

    def citation(self) -> str:
        return f'{self.source}: "{self.passage}"'


def load_families(path: str | Path = FAMILIES_PATH) -> dict[str, PublishedFamily]:
    """family -> PublishedFamily; errors name the file, the entry and the key."""
    return _load_keyed(path, "families", PublishedFamily, lambda f: f.family)


def judge_released_size(claim: Claim, table: dict[str, PublishedFamily] | None = None) -> Verdict:
    """A model the article names by family and size ("Llama3-13B") against the sizes its vendor
    released: a size the family was never released in is inconsistent with the vendor's card."""
    table = load_families() if table is None else table
    if not claim.family:
        raise LedgerError(f"claim {claim.id}: metric released_size_b needs `family` (a key of {FAMILIES_PATH.name})")
    fam = table.get(claim.family)
    if fam is None:
        return Verdict(NOT_TESTABLE, f"family {claim.family!r} is not recorded in {FAMILIES_PATH.name}", "none")
    sizes = ", ".join(f"{s:g}B" for s in fam.sizes_b)
    released = any(abs(s - claim.value) < 0.05 * s for s in fam.sizes_b)
    evidence = f"{fam.name} was released in {sizes} ({fam.citation()}); the article names a {claim.value:g}B"
    if released:
        return Verdict(CONSISTENT, evidence, "published")
    return Verdict(INCONSISTENT, evidence + ": no such model", "published")
