import json
import logging
import math
import threading
import urllib.error
import urllib.request

import pytest
import torch

from f5rl.rewards import RewardBatch, build_provider
from f5rl.rewards.serve import make_server


def _batch():
    mel = [torch.full((8, 100), -4.5), torch.full((6, 100), -3.0)]
    return RewardBatch([torch.zeros(24000), torch.linspace(-0.1, 0.1, 36000)], ["a" * 14, "b" * 28],
                       ref_audio=[None, torch.zeros(100)], mel=mel, metadata=[{"k": 1}, {}])


@pytest.fixture
def server():
    srv = make_server(["duration", "mel_energy"], {"mel_energy": {"target": -4.0}}, port=0, token="s3cret",
                      max_bytes=2_000_000)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_round_trip_equals_in_process(server):
    for name, cfg in [("duration", {}), ("mel_energy", {"target": -4.0})]:
        local = build_provider(name, cfg)(_batch())
        remote = build_provider("remote", {"url": _url(server), "provider": name, "token": "s3cret"})(_batch())
        assert torch.allclose(local.scores, remote.scores)
        for k, v in local.components.items():
            assert torch.allclose(v, remote.components[k])


def test_health_auth_and_size_limit(server):
    health = json.loads(urllib.request.urlopen(f"{_url(server)}/health", timeout=10).read())
    assert health == {"status": "ok", "providers": ["duration", "mel_energy"]}
    no_token = build_provider("remote", {"url": _url(server), "provider": "duration", "retries": 0})(_batch())
    assert torch.isnan(no_token.scores).all() and "401" in no_token.reasons[0]
    big = RewardBatch([torch.zeros(24000 * 30)], ["x"])  # ~3 MB of base64 audio > 2 MB limit
    out = build_provider("remote", {"url": _url(server), "provider": "duration", "token": "s3cret",
                                    "retries": 0})(big)
    assert torch.isnan(out.scores).all() and "413" in out.reasons[0]
    req = urllib.request.Request(f"{_url(server)}/score/nope", data=b"{}", method="POST",
                                 headers={"Authorization": "Bearer s3cret"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 404


def test_killed_server_gives_nan_and_a_log_line(caplog):
    srv = make_server(["duration"], port=0)
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    srv.server_close()  # killed: nothing listens on the port any more
    p = build_provider("remote", {"url": url, "provider": "duration", "retries": 1, "backoff": 0.01, "timeout": 2})
    with caplog.at_level(logging.ERROR):
        out = p(_batch())
    assert out.scores.shape == (2,) and all(math.isnan(v) for v in out.scores.tolist())
    assert "unreachable" in caplog.text


def test_bad_requests_get_400_at_once(server):
    import http.client

    host, port = "127.0.0.1", server.server_address[1]
    zero_rate = b'{"audio": [], "texts": [], "sample_rate": 0}'
    cases = [({"Content-Length": "-5"}, b""), ({"Content-Length": "abc"}, b""),
             ({"Content-Length": "5"}, b"[1,2]"), ({"Content-Length": str(len(zero_rate))}, zero_rate)]
    for headers, body in cases:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.putrequest("POST", "/score/duration")
        conn.putheader("Authorization", "Bearer s3cret")
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        assert resp.status == 400, (headers, resp.status, resp.read())
        conn.close()


def test_serve_refuses_bad_flags_in_one_line(capsys):
    from f5rl.rewards.serve import main

    with pytest.raises(SystemExit) as err:
        main(["--providers", "duration", "--max_mb", "0"])
    assert err.value.code == 2 and "--max_mb" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["--providers", "nope", "--port", "0"])
    assert err.value.code == 2 and "unknown reward provider 'nope'" in capsys.readouterr().err


def test_remote_reads_the_server_from_the_environment(monkeypatch):
    monkeypatch.delenv("F5RL_REWARD_SERVER", raising=False)
    monkeypatch.delenv("WHISPER_SERVER", raising=False)
    assert build_provider("remote", {"provider": "x"}).url == "http://127.0.0.1:8001"
    monkeypatch.setenv("WHISPER_SERVER", "localhost:9001")  # LLaSA's recipe exports it without a scheme
    assert build_provider("remote", {"provider": "x"}).url == "http://localhost:9001"
    monkeypatch.setenv("F5RL_REWARD_SERVER", "http://10.0.0.2:8001/")
    assert build_provider("remote", {"provider": "x"}).url == "http://10.0.0.2:8001"
    assert build_provider("remote", {"provider": "x", "url": "http://h:1"}).url == "http://h:1"


def test_serve_model_flag_configures_whisper_providers_only():
    from f5rl.rewards.serve import provider_configs

    out = provider_configs("asr=whisper_asr,whisper_nll,duration", ['whisper_nll={"model": "embedded:base"}'],
                           model="large-v3")
    assert out == {"asr": {"model": "large-v3"}, "whisper_nll": {"model": "embedded:base"}}
    with pytest.raises(ValueError, match="KEY=JSON"):
        provider_configs("duration", ["duration={bad"])
