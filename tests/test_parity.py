"""transformers and vLLM fed the same HF weights and prompt ids give the same greedy tokens."""

import pytest

from slmstudy.backends.base import GenRequest
from slmstudy.backends.registry import make_backend

pytestmark = pytest.mark.slow


def test_transformers_and_vllm_identical_greedy(arts, prompts_ids):
    reqs = [GenRequest(prompt_ids=p, max_tokens=32, force_length=True) for p in prompts_ids]
    with make_backend("transformers", arts.hf, dtype="float32") as hf:
        ref = [hf.generate_one(r).output_ids for r in reqs]
    with make_backend("vllm", arts.hf, dtype="float32") as vl:
        got = [vl.generate_one(r).output_ids for r in reqs]
    for i, (a, b) in enumerate(zip(ref, got)):
        first_diff = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), None)
        assert first_diff is None, f"prompt {i}: first difference at token {first_diff}: {a} vs {b}"
    assert all(len(a) == 32 for a in ref)
