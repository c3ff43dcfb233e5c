"""Both OpenAI-compatible servers: up on 127.0.0.1, streaming chat, nothing left behind."""

import psutil
import pytest

from slmstudy.backends.base import GenRequest
from slmstudy.backends.servers import LlamaCppServer, VLLMServer
from slmstudy.errors import ServerError

pytestmark = pytest.mark.slow


def _server(kind, arts, tmp_path):
    if kind == "llamacpp":
        return LlamaCppServer(arts.gguf, n_ctx=2048, log_dir=tmp_path, model_name="smollm2")
    return VLLMServer(arts.hf, dtype="float32", max_model_len=2048, log_dir=tmp_path,
                      model_name="smollm2")


@pytest.mark.parametrize("kind", ["llamacpp", pytest.param("vllm", marks=pytest.mark.vllm)])
def test_server_streams_and_tears_down_after_failure(kind, arts, chat_ids, tmp_path):
    srv = _server(kind, arts, tmp_path)
    pids = []
    with pytest.raises(RuntimeError, match="boom"):
        with srv:
            pids = sorted(srv.pids)
            assert srv.base_url.startswith("http://127.0.0.1:")
            client = srv.client()
            assert client.models() == ["smollm2"]
            g = client.chat_stream("What is 2+2?", max_tokens=48)
            assert "4" in g.text and len(g.token_times_ns) >= 2
            assert all(b >= a for a, b in zip(g.token_times_ns, g.token_times_ns[1:]))
            assert g.engine_timings["completion_tokens"] >= len(g.token_times_ns) - 1
            c = client.completion_stream(GenRequest(prompt_ids=chat_ids, max_tokens=16,
                                                    force_length=True))
            assert c.engine_timings["completion_tokens"] == 16
            raise RuntimeError("boom")  # a failure inside the block
    assert pids and srv.alive_pids() == []
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids)
    assert "127.0.0.1" in srv.log_path.read_text(errors="replace") or srv.log_path.stat().st_size


def test_port_taken_is_a_clear_error(arts):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ServerError, match="already in use"):
            LlamaCppServer(arts.gguf, port=port)


def test_server_that_dies_reports_its_log(tmp_path, arts):
    srv = LlamaCppServer(arts.gguf, n_ctx=2048, log_dir=tmp_path, ready_timeout_s=60)
    srv.command = lambda: ["python3", "-c", "import sys; print('cannot start'); sys.exit(3)"]
    with pytest.raises(ServerError, match="exited with code 3"):
        srv.start()
    assert srv.alive_pids() == []
