"""API keys: /v1/* needs a bearer token once keys are set; no open API on a reachable host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamrec.serving.app import create_app
from streamrec.serving.auth import InsecureServer
from streamrec.settings import Settings
from tests.unit.test_http_api import EVENT, Server, error_of, serve

KEY = "k" * 16 + "-first"
OTHER = "o" * 16 + "-second"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    secret = tmp_path / "keys"
    secret.write_text(f"{OTHER}\n")
    yield from serve(Settings(http_api_keys=KEY, http_api_keys_file=str(secret), http_host="0.0.0.0"))


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong-key-of-some-length", f"Basic {KEY}", KEY])
def test_v1_refuses_requests_without_a_valid_key(server: Server, authorization: str | None) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    for response in (
        server.client.get("/v1/users/u1/recommendations", headers=headers),
        server.client.post("/v1/events", json=EVENT, headers=headers),
        server.client.post(
            "/v1/events", content=b" " * 2_000_000, headers={**headers, "content-type": "application/json"}
        ),
    ):
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert error_of(response)["code"] == "unauthorized"
    assert not server.intake.sent


def test_every_configured_key_works_and_probes_stay_open(server: Server) -> None:
    for key in (KEY, OTHER):
        response = server.client.post("/v1/events", json=EVENT, headers={"authorization": f"bearer {key}"})
        assert response.status_code == 202
    assert len(server.intake.sent) == 2
    assert server.client.get("/healthz").status_code == 200
    assert server.client.get("/metrics").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "streamrec.example"])
def test_no_open_api_on_a_reachable_host(host: str) -> None:
    with pytest.raises(InsecureServer, match="without API keys"):
        create_app(Settings(http_host=host))
    create_app(Settings(http_host=host, http_allow_open=1))  # explicitly allowed: behind a proxy
    create_app(Settings(http_host=host, http_api_keys=KEY))


def test_short_keys_are_refused_and_keys_never_printed() -> None:
    with pytest.raises(InsecureServer, match="at least 16 characters"):
        create_app(Settings(http_api_keys="short"))
    assert KEY not in repr(Settings(http_api_keys=KEY))
