"""Chat templates: rendered once, with the model's Hugging Face tokenizer, into prompt token ids.

Every engine then gets the same ids, so differences come from the engine, not the prompt.
"""

from __future__ import annotations

from pathlib import Path

_TOKENIZERS: dict = {}


def tokenizer(path: str | Path):
    """The HF tokenizer of a model folder (loaded once per process)."""
    from transformers import AutoTokenizer

    key = str(path)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = AutoTokenizer.from_pretrained(key)
    return _TOKENIZERS[key]


def _ids(encoded) -> list[int]:
    if hasattr(encoded, "keys"):  # BatchEncoding in newer transformers
        encoded = encoded["input_ids"]
    return [int(i) for i in encoded]


def render_chat(tokenizer_dir: str | Path, messages: list[dict] | str,
                add_generation_prompt: bool = True) -> list[int]:
    """Render the chat template once with the model's HF tokenizer → prompt token ids."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    tok = tokenizer(tokenizer_dir)
    return _ids(tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                        tokenize=True))
