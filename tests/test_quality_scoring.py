"""Scorers of the quality sections, without a model: gold answers must score correct, known
bad answers must not, and format failures are told apart from wrong answers."""

import json
import math

import pytest

from slmstudy import datasets as D
from slmstudy.errors import StudyError
from slmstudy.evals import chinese, code, mathx, rubric, runner, structured
from slmstudy.evals.runner import Sample, Score, Task


@pytest.fixture(scope="module")
def have_data():
    try:
        D.data_dir()
    except D.DatasetError as e:
        pytest.skip(f"benchmark data not available: {e}")


# ------------------------------------------------------------------------------ rubric


def test_cjk_share_and_chars():
    assert rubric.cjk_share("北京是首都") == 1.0
    assert rubric.cjk_share("Tencent (1998)") == 0.0
    assert rubric.cjk_share("北京 Beijing") == pytest.approx(2 / 9)
    assert rubric.cjk_share("123 !!") == 0.0
    assert rubric.n_chars(" 北京 是\n首都 ") == 5


def test_final_answer_number():
    assert rubric.final_answer_number("所以……\n答案：5") == "5"
    assert rubric.final_answer_number("答案是 142。") == "142"
    assert rubric.final_answer_number("答案：3，不对，答案：**24**") == "24"
    assert rubric.final_answer_number("答案：Ｂ") is None
    assert rubric.final_answer_number("结果是5") is None


def test_no_echo():
    prompt = "小明比小红高，小红比小刚高。三人中谁最矮？"
    assert rubric.echoed_span("小明比小红高，小红比小刚", prompt, 8) is not None
    assert rubric.echoed_span("小刚", prompt, 8) is None
    assert rubric.echoed_span("小 明 比 小 红 高 ， 小 红", prompt, 8) is not None  # spaces ignored


def test_rubric_verdicts():
    checks = [{"type": "final_answer", "value": 5}, {"type": "max_chars", "n": 50}]
    assert rubric.evaluate("25-20=5\n答案：5", checks)[:2] == ("correct", 1.0)
    assert rubric.evaluate("答案：7", checks)[:2] == ("wrong", 0.5)
    assert rubric.evaluate("是5人", checks)[0] == "format_failure"  # no 答案： marker
    assert rubric.evaluate("   ", checks) == ("format_failure", 0.0, [])
    assert rubric.evaluate("<think>答案：9</think>答案：5", checks)[0] == "correct"


def test_rubric_check_types():
    run = lambda text, **c: rubric.run_check(text, c).passed  # noqa: E731
    assert run("立春在2月", type="contains_any", values=["2月", "二月"])
    assert not run("王五", type="contains_all", values=["王五", "深圳"])
    assert run("Tencent 1998, Baidu 2000", type="min_count", values=["tencent", "BAIDU", "x"], n=2)
    assert not run("圣诞快乐！", type="forbidden", values=["圣诞"])
    assert run("- a\n- b\n- c", type="regex_count", pattern=r"^\s*-\s*\S", min=3, max=3)
    assert run("一句话。", type="regex_count", pattern="[。！？]", max=1)
    assert not run("两句。两句。", type="regex_count", pattern="[。！？]", max=1)
    assert run('{"name": "x", "age": 3}', type="json_object", required=["name", "age"])
    assert not run('{"name": "x"}', type="json_object", required=["name", "age"])
    assert run("只有中文", type="cjk_share_min", value=0.9)
    assert run("English only", type="cjk_share_max", value=0.0)


def test_rubric_validation_names_the_task():
    with pytest.raises(Exception, match="t1.*unknown rubric check type 'nope'"):
        rubric.validate_check({"type": "nope"}, "t1")
    with pytest.raises(Exception, match="needs \\['values'\\]"):
        rubric.validate_check({"type": "forbidden"}, "t1")
    with pytest.raises(Exception, match="unknown keys"):
        rubric.validate_check({"type": "max_chars", "n": 3, "bogus": 1}, "t1")


def test_zh_task_file():
    doc = chinese.load_zh_tasks()
    tasks = doc["tasks"]
    assert 20 <= len(tasks) <= 30
    cats = {t["category"] for t in tasks}
    assert cats == {"daily_qa", "writing", "instruction", "table", "reasoning"}
    assert len(doc["sha256"]) == 64
    by_id = {t["id"]: t for t in tasks}
    # answers a careful person would give pass their rubric; echoes and wrong facts do not
    good = {
        "daily_lichun_month": "立春通常在每年的2月4日前后。",
        "write_yuanxiao_greeting": "元宵佳节，愿你阖家团圆，汤圆甜甜，花灯照亮新一年的好运！",
        "instr_tech_companies_english": "Tencent (1998)\nAlibaba (1999)\nBaidu (2000)",
        "instr_yes_no": "否",
        "instr_three_bullets": "- 多喝水\n- 早睡早起\n- 坚持运动",
        "instr_translate_only": "I drink a cup of tea every morning.",
        "instr_json_person": '{"name": "李雷", "age": 30}',
        "table_youngest": "王五最年轻，他来自深圳。",
        "reason_cats_mice": "每只猫3分钟抓1只老鼠，所以九只猫抓九只老鼠也要3分钟。\n答案：3",
        "reason_remainders": "满足条件的数为7+45k，最小三位数是142。\n答案：142",
        "reason_height_order": "小刚",
    }
    for tid, answer in good.items():
        t = by_id[tid]
        verdict, share, checks = rubric.evaluate(answer, t["checks"], t["prompt"])
        assert verdict == "correct", (tid, [c for c in checks if not c["passed"]])
    bad = {
        "write_yuanxiao_greeting": "元宵节快乐，圣诞快乐！",
        "instr_tech_companies_english": "腾讯 (1998), Baidu (2000), Alibaba (1999)",
        "table_youngest": "| 王五 | 25 | 深圳 |",
        "reason_height_order": "小明比小红高，小红比小刚",
        "write_spring_festival_sms": "给爷爷奶奶写一条春节拜年短信，必须包含身体健康",
    }
    for tid, answer in bad.items():
        t = by_id[tid]
        assert rubric.evaluate(answer, t["checks"], t["prompt"])[0] != "correct", tid


# ------------------------------------------------------------------------------ benchmarks


def test_multiple_choice_scoring(have_data):
    items = D.stratified_subset(D.load_cmmlu("test"), 20, "subject")
    dev = D.load_cmmlu("dev")
    task = chinese.mc_task("cmmlu", items, dev=dev, shots=2)
    s = task.samples[0]
    assert [m["role"] for m in s.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert s.messages[-1]["content"].endswith("答案：") and "D. " in s.messages[-1]["content"]
    assert s.messages[1]["content"] in ("A", "B", "C", "D")  # a shot is answered by its letter
    assert task.protocol == "chat-gen/cmmlu" and s.prompt is None
    for smp, it in zip(task.samples, items):
        assert task.scorer(f"答案：{it['answer']}", smp).verdict == "correct"
    wrong = "A" if s.gold != "A" else "B"
    assert task.scorer(f"答案是{wrong}", s).verdict == "wrong"
    sc = task.scorer("我不知道。", s)
    assert sc.verdict == "format_failure" and sc.extracted is None
    ceval = chinese.mc_task("ceval", D.load_ceval("val")[:3])
    header = "以下是中国关于注册会计师的单项选择题，请选出其中的正确答案。"
    assert ceval.samples[0].messages[0]["content"].startswith(header)


def test_lm_eval_multiple_choice_prompt_is_lm_evals_text_format():
    # lm-eval's multiple_choice: description + shots ("…答案： X\n\n") + question, no chat template
    shot = {"id": "s/0", "subject": "s", "question": " 1+1=? ", "A": "1", "B": "2", "C": "3", "D": "4",
            "answer": "B"}
    item = {"id": "s/1", "subject": "s", "question": "2+2=?", "A": "4", "B": "5", "C": "6", "D": "7",
            "answer": "A"}
    task = chinese.mc_task("cmmlu", [item], dev=[shot], shots=1, mode="loglik", subject_zh={"s": "算术"})
    assert task.samples[0].prompt == (
        "以下是关于算术的单项选择题，请直接给出正确答案的选项。\n\n"
        "1+1=?\nA. 1\nB. 2\nC. 3\nD. 4\n答案： B\n\n"
        "2+2=?\nA. 4\nB. 5\nC. 6\nD. 7\n答案：")
    assert task.continuations == (" A", " B", " C", " D") and task.prompt_format == "text"
    assert task.protocol == "lm-eval/cmmlu"
    with pytest.raises(StudyError, match="needs 2 dev items"):
        chinese.mc_task("cmmlu", [item], dev=[shot], shots=2, mode="loglik", subject_zh={"s": "算术"})


def test_mode_agreement_and_letters():
    recs = [{"task": "t", "target": "m/e", "mode": mode, "sample_id": str(i), "gold": "A",
             "extracted": x}
            for mode, xs in (("generate", ["A", None, "B"]), ("loglik", ["A", "C", "C"]))
            for i, x in enumerate(xs)]
    (row,) = chinese.mode_agreement(recs)
    assert row["n"] == 3 and row["agree"] == 1 and row["a_accuracy"] == pytest.approx(1 / 3)
    dist = {r["mode"]: r for r in chinese.letter_distribution(recs)}
    assert dist["generate"]["none"] == pytest.approx(1 / 3) and dist["loglik"]["C"] == pytest.approx(2 / 3)


def test_gsm8k_scoring_strict_and_flexible(have_data):
    rows = D.load_gsm8k()
    shots, pool = mathx.split_gsm8k_shots(rows, 2)
    task = mathx.gsm8k_task(pool[:50], shot_items=shots)
    assert len(task.samples[0].messages) == 5 and "<<" not in task.samples[0].messages[1]["content"]
    for s, it in zip(task.samples, pool[:50]):
        assert task.scorer(mathx.gsm8k_solution_text(it["answer"]), s).verdict == "correct"
    s = task.samples[0]
    sc = task.scorer(f"so the answer is {s.gold}.", s)
    assert sc.verdict == "format_failure" and sc.verdicts["flexible"] == "correct"
    sc = task.scorer("#### 123456789", s)
    assert sc.verdict == "wrong" and sc.verdicts["flexible"] == "wrong"
    with pytest.raises(ValueError, match="both few-shot"):
        mathx.gsm8k_task(rows[:3], shot_items=rows[:1])


def test_math500_scoring(have_data):
    items = D.load_math500()
    task = mathx.math500_task(items)
    for s, it in zip(task.samples, items):  # reference solutions end in \boxed{answer}
        assert task.scorer(it["solution"], s).verdict == "correct", it["id"]
    s = next(s for s in task.samples if s.gold == "\\frac{14}{3}")
    assert task.scorer("The answer is $\\boxed{\\dfrac{14}{3}}$.", s).verdict == "correct"
    assert task.scorer("$\\boxed{4.6667}$", s).verdict == "wrong"
    sc = task.scorer("it is 14/3", s)  # Qwen2.5-Math's reading: the last number, 3
    assert sc.verdict == "wrong" and sc.verdicts["boxed"] == "format_failure"
    assert task.scorer("no answer here", s).verdict == "format_failure"
    assert {smp.meta["level"] for smp in task.samples} == {1, 2, 3, 4, 5}


def test_bfcl_gold_calls_match(have_data):
    def pick(o):  # the first accepted value, recursively (BFCL nests options in dicts)
        if isinstance(o, dict):
            return {k: pick(next(x for x in v if x != "")) for k, v in o.items()
                    if any(x != "" for x in v)}
        if isinstance(o, list):
            return [pick(e) if isinstance(e, dict) else e for e in o]
        return o

    for lang in D.BFCL_LANGUAGES:
        items = D.load_bfcl(lang)
        task = structured.bfcl_task(items)
        n_ok = 0
        for s in task.samples:
            name, acc = next(iter(s.gold[0].items()))
            call = {"name": name, "arguments": pick(acc)}
            sc = task.scorer(f"```json\n{json.dumps(call)}\n```", s)
            n_ok += sc.verdict == "correct"
            assert sc.verdicts["json_valid"] == "correct"
        # one java item's possible answer is a bare dict value, which the first-value pick mangles
        assert n_ok >= len(items) - 1, lang


def test_bfcl_verdicts(have_data):
    item = D.load_bfcl("python")[0]  # calculate_triangle_area(base=10, height=5)
    task = structured.bfcl_task([item])
    s = task.samples[0]
    ok = task.scorer('{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}', s)
    assert ok.verdict == "correct" and ok.verdicts == {"json_valid": "correct", "schema_valid": "correct"}
    alt = task.scorer('[{"calculate_triangle_area": {"base": 10, "height": 5, "unit": "units"}}]', s)
    assert alt.verdict == "correct"
    bad = task.scorer('{"name": "calculate_triangle_area", "arguments": {"base": "10", "height": 6}}', s)
    assert bad.verdict == "wrong" and bad.verdicts["schema_valid"] == "wrong"
    extra = task.scorer('{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5, "x": 1}}', s)
    assert extra.verdict == "wrong" and "unknown parameter" in extra.detail["reason"]
    nojson = task.scorer("The area is 25.", s)
    assert nojson.verdict == "format_failure" and nojson.verdicts["json_valid"] == "format_failure"
    notcall = task.scorer('{"area": 25}', s)
    assert notcall.verdict == "format_failure" and notcall.verdicts["json_valid"] == "correct"
    in_code = task.scorer("```python\nx = [1, 2]\n```", s)  # a list in Python is not a JSON reply
    assert in_code.verdicts["json_valid"] == "format_failure" and in_code.verdict == "format_failure"
    chatty = task.scorer('Call: {"name": "calculate_triangle_area", "arguments": {"base": 10, '
                         '"height": 5}} done', s)
    assert chatty.verdict == "correct" and chatty.verdicts["json_valid"] == "format_failure"


def test_values_equal_semantics():
    eq = structured.values_equal
    assert eq("New York, NY", "new york ny") and eq(5, 5.0) and eq([1, 2], [1.0, 2])
    assert not eq(True, 1) and not eq("5", 5) and not eq([1, 2], [2, 1])
    assert eq({"a": 1}, {"a": [1], "b": ["", 2]}) and not eq({"a": 1, "c": 2}, {"a": [1]})


def test_humaneval_and_mbpp_gold_pass_and_bad_code_fails():
    he = D.load_humaneval()[:3]
    task = code.humaneval_task(he, timeout_s=10)
    for s, it in zip(task.samples, he):
        full = f"Sure!\n```python\n{it['prompt']}{it['canonical_solution']}```"
        assert task.scorer(full, s).verdict == "correct"
        assert task.scorer(it["canonical_solution"], s).verdict == "correct"  # body only
    s = task.samples[0]
    wrong = task.scorer(f"```python\n{he[0]['prompt']}    return True\n```", s)
    assert wrong.verdict == "wrong" and wrong.detail["sandbox_status"] == "failed"
    assert task.scorer("I cannot write code.", s).verdict == "format_failure"
    slow = task.scorer(f"```python\n{he[0]['prompt']}    while True: pass\n    return None\n```", s)
    assert slow.verdict == "timeout"
    try:
        mb = [r for r in D.load_mbpp(split="test")][:2]
    except D.DatasetError:
        return
    mtask = code.mbpp_task(mb)
    for s, it in zip(mtask.samples, mb):
        assert mtask.scorer(f"```python\n{it['code']}\n```", s).verdict == "correct"
    ep = mb[0]["entry_point"]
    hostile = mtask.scorer(f"```python\nimport os\ndef {ep}(*args):\n    os.system('echo hi')\n    return 0\n```",
                           mtask.samples[0])
    assert hostile.verdict == "wrong" and hostile.detail["sandbox_status"] == "blocked"


# ------------------------------------------------------------------------------ summaries


def _rec(v, **kw):
    return {"task": "t", "target": "m/e", "mode": "generate", "verdict": v, **kw}


def test_summary_counts_format_failures_apart():
    recs = ([_rec("correct", decode_tok_s=10.0, n_tokens=5)] * 3 + [_rec("wrong")] * 4
            + [_rec("format_failure")] * 2 + [_rec("timeout"), _rec("crash")])
    s = runner.summarize_records(recs)
    assert s["n"] == 11 and s["correct"] == 3 and s["wrong"] == 4
    assert s["format_failure"] == 2 and s["timeout"] == 1 and s["crash"] == 1
    assert s["accuracy"] == pytest.approx(3 / 11) and s["ci_low"] <= s["accuracy"] <= s["ci_high"]
    assert s["answered"] == 9 and s["accuracy_answered"] == pytest.approx(3 / 9)
    assert s["format_failure_rate"] == pytest.approx(2 / 11)
    assert s["decode_tok_s"] == 10.0


def test_summary_named_verdicts_and_partial_scores():
    recs = [_rec("format_failure", verdicts={"flexible": "correct"}, score_value=0.5),
            _rec("correct", verdicts={"flexible": "correct"}, score_value=1.0)]
    s = runner.summarize_records(recs)
    assert s["flexible_accuracy"] == 1.0 and s["accuracy"] == 0.5
    assert s["score_mean"] == pytest.approx(0.75)
    rows = runner.summarize(recs + [dict(_rec("wrong"), task="u")])
    assert [r["task"] for r in rows] == ["t", "u"]


def test_task_config_id_and_validation():
    s = [Sample("a", [{"role": "user", "content": "x"}])]
    t1 = Task("t", s, scorer=lambda text, smp: Score("correct"), max_tokens=8)
    t2 = Task("t", s, scorer=t1.scorer, max_tokens=16)
    assert t1.config_id != t2.config_id  # a changed setting re-runs samples under a new key
    with pytest.raises(Exception, match="not unique"):
        Task("t", s + s, scorer=t1.scorer)
    with pytest.raises(Exception, match="verdict"):
        Score("almost")


def test_wilson_interval_contains_point_everywhere():
    for k, n in ((0, 5), (5, 5), (1, 3), (37, 100)):
        recs = [_rec("correct")] * k + [_rec("wrong")] * (n - k)
        s = runner.summarize_records(recs)
        assert 0 <= s["ci_low"] <= s["accuracy"] <= s["ci_high"] <= 1
        assert not math.isnan(s["ci_low"])


def test_every_protocol_a_task_names_is_written_down():
    from slmstudy.evals import protocols

    named = set(chinese.MC_PROTOCOLS.values()) | {"lm-eval/gsm8k", "lm-eval/gsm8k_cot", "chat-gen/gsm8k",
                                                  "qwen25-math/math500",
                                                  "study/humaneval", "study/mbpp", "study/bfcl-simple",
                                                  "bfcl/simple_python",
                                                  code.humaneval_completion_task([]).protocol}
    assert named == set(protocols.PROTOCOLS)
    for row in protocols.table():
        assert all(row[k] for k in ("reference", "shots", "template", "extraction", "metric")), row
    with pytest.raises(StudyError, match="unknown protocol"):
        protocols.get("lm-eval/nope")


def test_model_comparison_pairs_models_on_shared_items_only():
    """a (model m1) right on s1-s3, b (model m2) right on s1 only, c (m1 on another engine) is
    not compared with a; s5 was scored by a alone and is left out. By hand: only-a 2, only-b 0,
    McNemar's exact two-sided p = 2 · 0.5² = 0.5, difference 2/4."""
    from slmstudy.evals.runner import model_comparison

    def rec(target, model, sid, ok):
        return {"task": "t", "mode": "generate", "target": target, "model": model,
                "sample_id": sid, "verdict": "correct" if ok else "wrong"}

    recs = [rec("m1/x", "m1", s, s in ("s1", "s2", "s3")) for s in ("s1", "s2", "s3", "s4", "s5")]
    recs += [rec("m2/x", "m2", s, s == "s1") for s in ("s1", "s2", "s3", "s4")]
    recs += [rec("m1/y", "m1", s, True) for s in ("s1", "s2")]
    rows = model_comparison(recs)
    pair = [r for r in rows if {r["a"], r["b"]} == {"m1/x", "m2/x"}]
    assert not [r for r in rows if {r["a"], r["b"]} == {"m1/x", "m1/y"}]
    (r,) = pair
    assert (r["n"], r["only_a_correct"], r["only_b_correct"]) == (4, 2, 0)
    assert (r["a_accuracy"], r["b_accuracy"], r["accuracy_diff"]) == (0.75, 0.25, 0.5)
    assert r["mcnemar_p"] == pytest.approx(0.5)
    assert r["diff_ci_low"] < 0.5 < r["diff_ci_high"]


def test_engine_parity_pairs_engines_of_one_model_and_counts_same_answers():
    """m1 on engines x and y, m2 on x: only the m1 pair is a parity row. x reads A, A, B, C on
    s1-s4 (gold A everywhere: 2 correct), y reads A, A, A, D (3 correct): same answer on s1, s2
    (2 of 4), only-y correct on s3, McNemar p = 1 (one discordant item), difference −1/4."""
    from slmstudy.evals.runner import engine_parity, engine_parity_table

    def rec(target, model, sid, letter):
        return {"task": "t", "mode": "loglik", "target": target, "model": model, "sample_id": sid,
                "extracted": letter, "verdict": "correct" if letter == "A" else "wrong"}

    recs = [rec("m1/x", "m1", s, v) for s, v in zip(("s1", "s2", "s3", "s4"), "AABC")]
    recs += [rec("m1/y", "m1", s, v) for s, v in zip(("s1", "s2", "s3", "s4"), "AAAD")]
    recs += [rec("m2/x", "m2", s, "A") for s in ("s1", "s2", "s3", "s4")]
    (r,) = engine_parity(recs)
    assert (r["a"], r["b"], r["n"]) == ("m1/x", "m1/y", 4)
    assert (r["same_answer"], r["same_answer_rate"]) == (2, 0.5)
    assert (r["only_a_correct"], r["only_b_correct"], r["accuracy_diff"]) == (0, 1, -0.25)
    assert r["mcnemar_p"] == pytest.approx(1.0)
    assert isinstance(engine_parity_table(recs[:4]), str)  # one engine only: a sentence
