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


#: End-of-turn / end-of-generation token texts, as llama.cpp detects them in any vocabulary
#: (src/llama-vocab.cpp: its EOT list and the EOG set built from it). A model whose chat template
#: closes a turn with one of these stops there on every engine, even when its EOS id differs.
EOG_TOKEN_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                   "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<|eom_id|>", "<|end_of_text|>",
                   "<end_of_utterance>", "<|return|>", "<|call|>")


def _json_ids(path: Path, *keys: str) -> set[int]:
    import json

    if not path.is_file():
        return set()
    node = json.loads(path.read_text(encoding="utf-8"))
    for k in keys[:-1]:
        node = node.get(k) or {}
    value = node.get(keys[-1])
    values = value if isinstance(value, list) else [value]
    return {int(v) for v in values if isinstance(v, int) and v >= 0}


def end_of_generation_ids(folder: str | Path) -> set[int]:
    """Every token id that ends generation for the model in `folder` (an HF, ONNX or OpenVINO
    folder): the EOS ids of its generation_config.json / config.json / genai_config.json, the
    tokenizer's EOS, and each special token of :data:`EOG_TOKEN_TEXTS` the tokenizer has (the
    chat template's end of turn). llama.cpp computes the same set from a GGUF's vocabulary."""
    folder = Path(folder)
    ids = (_json_ids(folder / "generation_config.json", "eos_token_id")
           | _json_ids(folder / "config.json", "eos_token_id")
           | _json_ids(folder / "genai_config.json", "model", "eos_token_id"))
    if (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file():
        tok = tokenizer(folder)
        if tok.eos_token_id is not None:
            ids.add(int(tok.eos_token_id))
        specials = set(tok.all_special_tokens) | {
            t.content for t in getattr(tok, "added_tokens_decoder", {}).values() if t.special}
        for text in EOG_TOKEN_TEXTS:
            if text in specials:
                ids.add(int(tok.convert_tokens_to_ids(text)))
    return ids
