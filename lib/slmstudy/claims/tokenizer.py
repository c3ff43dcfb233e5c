"""How much text fits in a model's context, by the model's own published tokenizer.

The vocabularies are the makers' files, committed with their source and sha256
(data/tokenizers/tokenizers.yaml). Two numbers come out of one:

- an **upper bound that holds for every text**: a token completes at most `k` Han characters
  (those whose last UTF-8 byte it holds), where `k` is read off the vocabulary, so `n` tokens
  hold at most `k * n` Han characters — a claim above it contradicts the tokenizer's definition;
- the **characters per token on real Chinese prose**, measured by encoding the benchmark data's
  AlignBench reference answers (long Chinese answers, their `reference` field) with the tokenizer.

Encoding follows the makers' own code: tiktoken with the vocabulary's ranks and the pre-tokenizer
pattern of Qwen's `tokenization_qwen.py` (QwenLM/Qwen-Agent), after Unicode NFC as Qwen2's
tokenizer does.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..paths import REPO_ROOT
from .vocabulary import LedgerError

TOKENIZERS_DIR = REPO_ROOT / "data" / "tokenizers"
#: Han (CJK unified ideographs, extensions A-F, compatibility ideographs)
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


@dataclass(eq=False)
class Vocabulary:
    name: str
    entry: dict
    ranks: dict[bytes, int] = field(repr=False)
    _longest: tuple[int, str] | None = field(default=None, init=False, repr=False)
    _encoding: object = field(default=None, init=False, repr=False)

    @property
    def source(self) -> str:
        return self.entry["source"]

    def max_han_per_token(self) -> tuple[int, str]:
        """The most Han characters one token completes, and that token. A token completes each
        character whose last byte it holds: the whole characters it decodes to, plus one if it
        begins inside a character (with UTF-8 continuation bytes)."""
        if self._longest is not None:
            return self._longest
        best, arg = 0, ""
        for token in self.ranks:
            n = len(HAN.findall(token.decode("utf-8", errors="ignore")))
            n += 1 if token and 0x80 <= token[0] <= 0xBF else 0
            if n > best:
                best, arg = n, token.decode("utf-8", errors="replace")
        self._longest = (best, arg)
        return best, arg

    def encoding(self):
        if self._encoding is None:
            import tiktoken

            self._encoding = tiktoken.Encoding(f"slmstudy-{self.name}", pat_str=self.entry["pattern"],
                                               mergeable_ranks=self.ranks, special_tokens={})
        return self._encoding

    def count(self, text: str) -> int:
        if self.entry.get("normalize"):
            text = unicodedata.normalize(self.entry["normalize"], text)
        return len(self.encoding().encode_ordinary(text))


def _table(folder: Path = TOKENIZERS_DIR) -> dict[str, dict]:
    path = folder / "tokenizers.yaml"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))["tokenizers"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
        raise LedgerError(f"{path}: cannot read the tokenizers table ({e}); restore it from git") from None


def load(name: str, folder: Path = TOKENIZERS_DIR) -> Vocabulary:
    """A committed vocabulary by name, its sha256 checked (read once per process)."""
    return _load(name, Path(folder).resolve())


@lru_cache(maxsize=None)
def _load(name: str, folder: Path) -> Vocabulary:
    table = _table(folder)
    if name not in table:
        raise LedgerError(f"tokenizer {name!r} is not in {folder / 'tokenizers.yaml'} (known: {', '.join(table)})")
    entry = table[name]
    path = folder / entry["file"]
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != entry["sha256"]:
        raise LedgerError(f"{path}: sha256 {sha} of its content, but tokenizers.yaml says {entry['sha256']}: "
                          "restore the makers' file (git checkout data/tokenizers)")
    ranks = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != entry["regular_tokens"]:
        raise LedgerError(f"{path}: {len(ranks)} tokens, tokenizers.yaml says {entry['regular_tokens']}")
    return Vocabulary(name, entry, ranks)


def for_model(model: str, folder: Path = TOKENIZERS_DIR) -> Vocabulary | None:
    """The committed vocabulary of a registry model, or None if none is committed for it."""
    for name, entry in _table(folder).items():
        if model in entry.get("models", ()):
            return load(name, folder)
    return None


@dataclass(frozen=True)
class ProseRate:
    chars: int
    han: int
    tokens: int
    texts: int
    source: str

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens

    @property
    def han_per_token(self) -> float:
        return self.han / self.tokens


def chinese_prose_rate(vocab: Vocabulary, root=None) -> ProseRate | None:
    """Characters per token of the vocabulary on AlignBench's reference answers (benchmark data,
    sha256 checked); None where the data folder is absent."""
    from ..datasets import DatasetError, verify

    try:
        files = verify("alignbench", ["data_v1.1_release.jsonl"], root=root)
    except DatasetError:
        return None
    texts = [json.loads(line).get("reference") or "" for line in
             files["data_v1.1_release.jsonl"].read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [t for t in texts if HAN.search(t)]
    return ProseRate(chars=sum(map(len, texts)), han=sum(len(HAN.findall(t)) for t in texts),
                     tokens=sum(vocab.count(t) for t in texts), texts=len(texts),
                     source="AlignBench v1.1 reference answers (benchmark data alignbench/data_v1.1_release.jsonl)")
