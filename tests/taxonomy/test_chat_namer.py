"""ChatNamer against a stub chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gem_dagster.taxonomy import ChatNamer, ClusterName

from .chat_stub import API_KEY

FALLBACK = ClusterName("Orbit / Comet", "Documents about orbit and comet.")
KEYWORDS = ["orbit", "comet", "planet"]
IDS = ["doc-3", "doc-1"]
EXCERPTS = ["The comet passed the planet.", "An orbit around the sun."]


def make_namer(stub, tmp_path, **overrides) -> ChatNamer:
    settings = {"timeout": 0.5, "max_retries": 0, "backoff": 0.0, "cache_dir": tmp_path / "cache"}
    settings.update(overrides)
    return ChatNamer(stub.base_url, "test-model", API_KEY, **settings)


def test_success_returns_chat_name(stub, tmp_path):
    namer = make_namer(stub, tmp_path)

    result = namer.name_cluster(3, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert result == ClusterName("Astronomy", "Planets, comets and orbits.", "chat")
    assert len(stub.requests) == 1
    request = stub.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == f"Bearer {API_KEY}"
    assert request["body"]["model"] == "test-model"
    prompt = request["body"]["messages"][-1]["content"]
    assert "orbit, comet, planet" in prompt
    assert EXCERPTS[0] in prompt


def test_code_fenced_reply_is_accepted(stub, tmp_path):
    stub.mode = "fenced"

    result = make_namer(stub, tmp_path).name_cluster(0, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert result.name == "Astronomy"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error500", "HTTP 500"),
        ("slow", "timed out"),
        ("malformed", "not JSON"),
        ("missing_field", "'description' is missing"),
        ("empty_name", "'name' is missing"),
        ("long_name", "61 characters"),
        ("prose", "not a JSON object"),
        ("unauthorized", "HTTP 401"),
        ("echo_key", "Your key is ***"),
        ("redirect", "HTTP 302"),
    ],
)
def test_failure_falls_back_with_warning(stub, tmp_path, caplog, mode, reason):
    stub.mode = mode
    namer = make_namer(stub, tmp_path)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="gem_dagster.taxonomy"):
        result = namer.name_cluster(7, KEYWORDS, IDS, EXCERPTS, FALLBACK)
    elapsed = time.monotonic() - started

    assert result == FALLBACK
    assert len(caplog.records) == 1
    assert "cluster 7" in caplog.text
    assert reason in caplog.text
    assert API_KEY not in caplog.text
    assert elapsed < 0.9
    assert list((tmp_path / "cache").glob("*.json")) == []


def test_server_error_is_retried(stub, tmp_path, caplog):
    stub.mode = "error500"
    namer = make_namer(stub, tmp_path, max_retries=2)

    with caplog.at_level(logging.WARNING, logger="gem_dagster.taxonomy"):
        result = namer.name_cluster(1, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert result == FALLBACK
    assert len(stub.requests) == 3
    assert sum("retrying" in record.getMessage() for record in caplog.records) == 2
    assert API_KEY not in caplog.text


def test_client_error_is_not_retried(stub, tmp_path):
    stub.mode = "unauthorized"
    namer = make_namer(stub, tmp_path, max_retries=2)

    namer.name_cluster(1, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert len(stub.requests) == 1


def test_unreachable_server_falls_back(tmp_path, caplog):
    # Bind a port and close it again, so nothing listens there.
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    namer = ChatNamer(f"http://127.0.0.1:{port}/v1", "m", API_KEY, timeout=0.5, max_retries=0)

    with caplog.at_level(logging.WARNING, logger="gem_dagster.taxonomy"):
        result = namer.name_cluster(2, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert result == FALLBACK
    assert "cluster 2" in caplog.text
    assert API_KEY not in caplog.text


def test_cache_hit_sends_no_request(stub, tmp_path):
    namer = make_namer(stub, tmp_path)

    first = namer.name_cluster(0, KEYWORDS, IDS, EXCERPTS, FALLBACK)
    # Same ids in another order and keywords reordered: the same fingerprint.
    second = namer.name_cluster(0, KEYWORDS[::-1], IDS[::-1], EXCERPTS, FALLBACK)

    assert first.source == "chat"
    assert second == ClusterName(first.name, first.description, "cache")
    assert len(stub.requests) == 1
    fingerprint = namer.fingerprint(KEYWORDS, IDS)
    cached = json.loads((tmp_path / "cache" / f"{fingerprint}.json").read_text())
    assert cached["name"] == "Astronomy"
    assert API_KEY not in json.dumps(cached)


def test_fingerprint_depends_on_model_and_ids(stub, tmp_path):
    namer = make_namer(stub, tmp_path)
    other_model = ChatNamer(stub.base_url, "other-model", API_KEY)

    base = namer.fingerprint(KEYWORDS, IDS)

    assert len(base) == 64
    assert namer.fingerprint(KEYWORDS, ["doc-3", "doc-2"]) != base
    assert namer.fingerprint(["orbit"], IDS) != base
    assert other_model.fingerprint(KEYWORDS, IDS) != base


def test_corrupt_cache_file_is_ignored(stub, tmp_path, caplog):
    namer = make_namer(stub, tmp_path)
    path = tmp_path / "cache" / f"{namer.fingerprint(KEYWORDS, IDS)}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"name": "half')

    with caplog.at_level(logging.WARNING, logger="gem_dagster.taxonomy"):
        result = namer.name_cluster(4, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert result.source == "chat"
    assert len(stub.requests) == 1
    assert "unreadable cached name" in caplog.text
    assert json.loads(path.read_text())["name"] == "Astronomy"


def test_without_cache_every_call_requests(stub, tmp_path):
    namer = make_namer(stub, tmp_path, cache_dir=None)

    namer.name_cluster(0, KEYWORDS, IDS, EXCERPTS, FALLBACK)
    namer.name_cluster(0, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert len(stub.requests) == 2


def test_repr_hides_key(stub, tmp_path):
    namer = make_namer(stub, tmp_path)

    text = repr(namer)

    assert API_KEY not in text
    assert "api_key='***'" in text
    assert "test-model" in text


def test_no_key_sends_no_authorization(stub, tmp_path):
    namer = ChatNamer(stub.base_url, "test-model", None, timeout=0.5)

    namer.name_cluster(0, KEYWORDS, IDS, EXCERPTS, FALLBACK)

    assert stub.requests[0]["authorization"] is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"base_url": "file:///etc/passwd"}, "http or https URL"),
        ({"base_url": "localhost:8000"}, "http or https URL"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"backoff": -1.0}, "backoff must be a number of seconds >= 0"),
    ],
)
def test_constructor_rejects_bad_settings(arguments, message):
    settings = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": API_KEY}
    settings.update(arguments)

    with pytest.raises(ValueError, match=message):
        ChatNamer(**settings)


def test_non_string_key_is_not_shown():
    secret = 123456789987654321

    with pytest.raises(ValueError) as raised:
        ChatNamer("http://127.0.0.1:9/v1", "m", secret)

    assert str(secret) not in str(raised.value)
    assert "api_key must be a string or None, got int" in str(raised.value)
