"""Characters said to fit in a context, judged with the model's own published tokenizer
(data/tokenizers/, slmstudy.claims.tokenizer): the bound any text obeys, and the rate on prose."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from slmstudy import claims as C
from slmstudy.claims import tokenizer as T
from slmstudy.claims.ledger import arch_table
from test_claims import make_claim


@pytest.fixture(scope="module")
def qwen():
    return T.load("qwen")


def test_the_committed_vocabulary_is_the_makers_file(qwen):
    """151,643 regular tokens, as the Qwen2.5 report says, and the sha256 recorded from the source."""
    raw = gzip.decompress((T.TOKENIZERS_DIR / qwen.entry["file"]).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == qwen.entry["sha256"]
    assert len(qwen.ranks) == 151_643 == len(raw.splitlines())
    assert sorted(qwen.ranks.values()) == list(range(151_643))
    assert T.for_model("qwen25_7b") is qwen and T.for_model("phi3_mini") is None


def test_a_changed_vocabulary_file_is_refused(tmp_path, qwen):
    (tmp_path / "tokenizers.yaml").write_text((T.TOKENIZERS_DIR / "tokenizers.yaml").read_text())
    (tmp_path / qwen.entry["file"]).write_bytes(gzip.compress(b"IQ== 0\n"))
    with pytest.raises(C.LedgerError, match="sha256 .* restore the makers' file"):
        T.load("qwen", tmp_path)


def test_encoding_follows_the_makers_pretokenizer(qwen):
    """Digits split one by one (Qwen's pattern `\\p{N}`), a vocabulary word is one token, and every
    byte round-trips."""
    enc = qwen.encoding()
    assert qwen.count("2024") == 4
    word = next(t for t in qwen.ranks if t.decode("utf-8", "ignore") == " 生命周期函数")
    assert enc.encode_ordinary(" 生命周期函数") == [qwen.ranks[word]]
    text = "高音单簧管和高音萨克斯的调性相同吗？If so, 1+1=2."
    assert enc.decode(enc.encode_ordinary(text)) == text


def test_a_token_that_begins_inside_a_character_completes_it():
    """The bound counts the character a token completes: '函数' preceded by the last byte of '期'."""
    tail_of_qi = "期".encode()[2:]
    v = T.Vocabulary("t", {}, {tail_of_qi + "函数".encode(): 0, "数".encode(): 1})
    assert v.max_han_per_token()[0] == 3


def _vocab_with(k: int) -> T.Vocabulary:
    """A vocabulary whose longest Han token has k characters."""
    return T.Vocabulary("synthetic", {"regular_tokens": 2, "sha256": "0" * 64, "source": "test",
                                      "same_as": "test"}, {("字" * k).encode(): 0, "字".encode(): 1})


def _rate(han_per_token: float) -> T.ProseRate:
    return T.ProseRate(chars=int(han_per_token * 1000), han=int(han_per_token * 1000), tokens=1000, texts=1,
                       source="test prose")


def test_a_million_characters_in_128k_tokens_contradicts_qwens_tokenizer():
    """No token of Qwen's vocabulary completes more than 6 Han characters (the file's longest Han
    token is ' 生命周期函数'), so 131,072 tokens hold at most 786,432: the three articles' "百万汉字"
    (read as at least 900,000) cannot fit, whatever the text."""
    arch, hardware = arch_table(), C.load_hardware()
    claims = {c.id: c for c in C.load_claims(model_keys=arch, hardware_keys=hardware) if c.metric == "context_chars"}
    assert len(claims) == 3
    for claim in claims.values():
        v = C.judge(claim, arch, hardware)
        assert v.verdict == C.IMPOSSIBLE and "at most 786,432 Han characters" in v.evidence, v.evidence


def test_the_verdict_follows_the_bound_and_the_measured_rate(monkeypatch):
    """The same claim, judged with other evidence: a vocabulary with 8-character tokens lifts the
    bound to 1,048,576, and then the measured prose rate decides (1.2 Han characters per token
    holds ~157,000: inconsistent; 7 per token: consistent)."""
    arch, hardware = arch_table(), C.load_hardware()
    claim = make_claim(metric="context_chars", value=1_000_000, relation="~")
    monkeypatch.setattr(T, "for_model", lambda model: _vocab_with(8))
    monkeypatch.setattr(T, "chinese_prose_rate", lambda vocab: _rate(1.2))
    v = C.judge(claim, arch, hardware)
    assert v.verdict == C.INCONSISTENT and v.basis == "measurement" and "157,286" in v.evidence, v.evidence
    monkeypatch.setattr(T, "chinese_prose_rate", lambda vocab: _rate(7.0))
    assert C.judge(claim, arch, hardware).verdict == C.CONSISTENT
    monkeypatch.setattr(T, "for_model", lambda model: _vocab_with(6))
    assert C.judge(claim, arch, hardware).verdict == C.IMPOSSIBLE


def test_prose_rate_is_measured_on_the_benchmark_data(qwen):
    """AlignBench's reference answers (sha256-checked benchmark data): Chinese prose, so between
    one and two Han characters per token for a vocabulary whose Han tokens are 1-4 characters."""
    rate = T.chinese_prose_rate(qwen)
    if rate is None:
        pytest.skip("no benchmark data folder (SLMSTUDY_DATA_DIR)")
    assert rate.texts > 600 and rate.han > 100_000
    assert 1.0 < rate.han_per_token < 2.0 < T.load("qwen").max_han_per_token()[0]
