"""Named scoring protocols: how a benchmark number is made, written down once.

A published score means little without its protocol: the shots and where they come from, the
prompt template, whether a chat template is applied, the stop strings, the token budget, how the
answer is extracted and what is averaged. Each protocol here names the reference it reproduces
(lm-evaluation-harness task configs, read in lm-eval 0.4.13; OpenCompass; EvalPlus), every task
built from it records its id (`Task.protocol` → each sample's `config.protocol`), and the notebooks
and report show :func:`table` beside the scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import StudyError


@dataclass(frozen=True)
class Protocol:
    id: str
    benchmark: str
    reference: str
    shots: str
    template: str
    stop: str
    max_tokens: str
    extraction: str
    metric: str


_LMEVAL_MC_TEXT = ("plain text, no chat template: the subject's description, then each shot as "
                   "`question\\nA. …\\nB. …\\nC. …\\nD. …\\n答案： X\\n\\n`, then the question ending "
                   "`答案：`")
_LMEVAL_MC_METRIC = ("acc: argmax of log P(' A' … ' D' | prompt) over the four continuations; mean "
                     "over items and mean over subjects; acc_norm (per-byte) kept beside it")
_CHAT_MC = ("the model's chat template; shots as earlier turns (user: description + question "
            "ending `答案：`; assistant: the letter); the question last")
_CHAT_MC_EXTRACT = ("first explicit answer marker (答案/正确选项/answer is/\\boxed), then 选X, a "
                    "leading letter, a lone bracketed letter (evals.extract.extract_choice; "
                    "OpenCompass first_option_postprocess takes the first marker too); an echoed "
                    "option list or no letter is a format failure, counted wrong")

PROTOCOLS: dict[str, Protocol] = {p.id: p for p in [
    Protocol(
        id="lm-eval/cmmlu", benchmark="cmmlu",
        reference="lm-evaluation-harness 0.4.13 `cmmlu` (tasks/cmmlu/_default_template_yaml and "
                  "cmmlu_<subject>.yaml) run with --num_fewshot 5",
        shots="5, from the same subject's dev split, first in file order (sampler first_n)",
        template=_LMEVAL_MC_TEXT + "; description 以下是关于{科目}的单项选择题，请直接给出正确答案的选项。",
        stop="— (log-likelihood)", max_tokens="— (log-likelihood)",
        extraction="none: the highest-likelihood continuation is the answer",
        metric=_LMEVAL_MC_METRIC),
    Protocol(
        id="lm-eval/ceval-valid", benchmark="ceval",
        reference="lm-evaluation-harness 0.4.13 `ceval-valid` (tasks/ceval/_default_ceval_yaml "
                  "and ceval-valid_<subject>.yaml) run with --num_fewshot 5",
        shots="5, from the same subject's dev split, first in file order (sampler first_n)",
        template=_LMEVAL_MC_TEXT + "; description 以下是中国关于{科目}的单项选择题，请选出其中的正确答案。",
        stop="— (log-likelihood)", max_tokens="— (log-likelihood)",
        extraction="none: the highest-likelihood continuation is the answer",
        metric=_LMEVAL_MC_METRIC),
    Protocol(
        id="chat-gen/cmmlu", benchmark="cmmlu",
        reference="generative variant of lm-eval `cmmlu` (its description and question format) "
                  "in the model's chat template, as chat models are scored by OpenCompass's "
                  "`cmmlu_gen` (multi-turn shots, first-option extraction)",
        shots="as lm-eval/cmmlu (params `shots`, default 5, dev split, first_n)",
        template=_CHAT_MC, stop="the model's end-of-generation tokens",
        max_tokens="params mc_max_tokens (default 24)", extraction=_CHAT_MC_EXTRACT,
        metric="accuracy with Wilson 95% CI; format failures counted apart and as wrong"),
    Protocol(
        id="chat-gen/ceval-valid", benchmark="ceval",
        reference="generative variant of lm-eval `ceval-valid` in the model's chat template, as "
                  "OpenCompass's `ceval_gen` scores chat models",
        shots="as lm-eval/ceval-valid (params `shots`, default 5, dev split, first_n)",
        template=_CHAT_MC, stop="the model's end-of-generation tokens",
        max_tokens="params mc_max_tokens (default 24)", extraction=_CHAT_MC_EXTRACT,
        metric="accuracy with Wilson 95% CI; format failures counted apart and as wrong"),
    Protocol(
        id="lm-eval/gsm8k", benchmark="gsm8k",
        reference="lm-evaluation-harness 0.4.13 `gsm8k` (tasks/gsm8k/gsm8k.yaml)",
        shots="5 from the train split, `random.Random(1234).sample(train, 5)` per document in "
              "evaluation order (lm-eval's fewshot seed and ContextSampler)",
        template="plain text: shots as `Question: …\\nAnswer: <reference solution>\\n\\n`, then "
                 "`Question: …\\nAnswer:`",
        stop='"Question:", "</s>", "<|im_end|>" (lm-eval until) and the end-of-generation tokens',
        max_tokens="256 (lm-eval max_gen_toks)",
        extraction="strict-match `#### (-?[0-9.,]+)` (first); flexible-extract: last match of "
                   "`(-?[$0-9.,]{2,})|(-?[0-9]+)`",
        metric="exact_match after removing ',', '$', everything up to '#### ', a final '.', "
               "case-insensitive; strict is the verdict, flexible a second one"),
    Protocol(
        id="chat-gen/gsm8k", benchmark="gsm8k",
        reference="the study's chat variant (no reference harness): how an instruct model is "
                  "used, asked to end with `#### <number>`",
        shots="0", template="the model's chat template; instruction + `Question: …`",
        stop="the model's end-of-generation tokens", max_tokens="params gsm8k_max_tokens (256)",
        extraction="strict: the number after the first `####`; flexible: the last number",
        metric="numeric equality with the reference (1,000 = 1000; 3.50 = 3.5)"),
]}


def get(protocol_id: str) -> Protocol:
    try:
        return PROTOCOLS[protocol_id]
    except KeyError:
        raise StudyError(f"unknown protocol {protocol_id!r}; protocols: {sorted(PROTOCOLS)}") from None


def table(ids=None) -> list[dict]:
    """Rows for the notebooks and the report: one per protocol (all, or those named)."""
    return [asdict(get(i)) for i in (ids if ids is not None else PROTOCOLS)]
