"""A reader's own model through params alone: a GGUF at a path of its own, under a name of its
own, with no registry entry and no HF folder (its embedded vocabulary and chat template are
used), through speed and every quality section; and the errors for what is missing."""

import shutil

import pytest

from slmstudy.params import validate
from slmstudy.results import SectionResults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_gguf(arts, tmp_path_factory):
    path = tmp_path_factory.mktemp("mine") / "my-own-model.gguf"
    shutil.copyfile(arts.gguf, path)
    return path


def _quality(section, own_gguf, **sizes):
    return validate(section, {"run_id": "own", "threads": 2, **sizes, "targets": [
        {"model": "mine", "path": str(own_gguf), "engine": "llamacpp",
         **({"loglik": True} if section == "03_chinese_quality" else {})}]})


def test_own_gguf_in_speed_and_every_quality_section(own_gguf, arts, tmp_path):
    from slmstudy import speed
    from slmstudy.chat import render_chat
    from slmstudy.evals import chinese, code, mathx, runner

    # speed: the path as the model, nothing else
    p = validate("02_speed", {"run_id": "own", "prompt_tokens": 16, "output_tokens": 4,
                              "repetitions": 1, "warmup": 0, "concurrency": [1], "http_engines": [],
                              "bandwidth_bytes": 1 << 26, "targets": [
                                  {"model": str(own_gguf), "engine": "llamacpp", "label": "mine"}]})
    s = speed.run_section(p, SectionResults("own", "02_speed", root=tmp_path), http=False,
                          log=lambda *a: None)
    (row,) = s["rows"]
    assert row["target"] == "mine" and row["decode_tok_s"] > 0 and row["n_requests"] >= 1

    # the tokenizer made from the GGUF renders what the model's own HF folder renders
    target = runner.target_from_spec(_quality("04_math", own_gguf).targets[0],
                                     _quality("04_math", own_gguf))
    assert target.tokenizer_dir != arts.hf and target.path == own_gguf
    msgs = [{"role": "user", "content": "2+2? 用一句话回答。"}]
    assert render_chat(target.tokenizer_dir, msgs) == render_chat(arts.hf, msgs)

    sections = [
        ("03_chinese_quality", chinese, dict(cmmlu_n=1, ceval_n=1, shots=1, mc_max_tokens=4,
                                             zh_tasks=False, peer_lmeval=False)),
        ("04_math", mathx, dict(gsm8k_n=1, gsm8k_shots=1, gsm8k_max_tokens=8, math500_n=1,
                                math500_max_tokens=8)),
        ("05_code", code, dict(humaneval_n=1, mbpp_n=1, bfcl_n=1, code_max_tokens=8,
                               bfcl_max_tokens=8)),
    ]
    for section, mod, sizes in sections:
        P = _quality(section, own_gguf, **sizes)
        tasks = mod.build_tasks(P)
        records, infos = runner.run_section(P, tasks, SectionResults("own", section, root=tmp_path),
                                            progress=False)
        assert len(records) == sum(len(t.samples) for t in tasks) > 0, section
        assert {r["target"] for r in records} == {"mine/llamacpp"}
        assert not infos[0]["skipped"]  # it has a chat template: every protocol ran
        assert all(r["verdict"] != "crash" for r in records), [r["detail"] for r in records]


def test_errors_name_the_file_and_what_is_missing(own_gguf, arts, tmp_path):
    from slmstudy import speed
    from slmstudy.errors import ModelNotFoundError, StudyError
    from slmstudy.evals import runner

    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(ModelNotFoundError, match="nowhere.gguf.*does not exist"):
        runner.resolve_target("x", "llamacpp", path=str(missing))
    with pytest.raises(StudyError, match="GGUF file: transformers needs an HF model folder"):
        p = validate("02_speed", {"targets": [{"model": str(own_gguf), "engine": "transformers"}]})
        speed.resolve_target(p.targets[0])
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    shutil.copyfile(arts.hf / "config.json", folder / "config.json")
    with pytest.raises(ModelNotFoundError, match="no-tokenizer has no Hugging Face tokenizer"):
        runner.resolve_target("x", "transformers", path=str(folder))
