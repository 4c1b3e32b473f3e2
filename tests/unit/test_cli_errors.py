"""Every error a user can cause is one line (click's ``Error: ...``), never a traceback,
and it comes before anything has started."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streamrec.infra.broker import free_port
from streamrec.infra.cli import main
from streamrec.settings import Settings


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"STREAMREC_DATA_DIR": str(tmp_path / "data"), "STREAMREC_CONFIG": ""}


def run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env)


def one_line_error(result: Result) -> str:
    """The error message, checked to be a single ``Error:`` line with a failing exit code."""
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("STREAMREC_HTTP_PORT", "eighty", "not a valid int"),
        ("STREAMREC_HTTP_PORT", "70000", "not a port"),
        ("STREAMREC_PARTITIONS", "0", "must be at least 1"),
        ("STREAMREC_BROKER", "localhost:9092", "kafka://host:port"),
        ("STREAMREC_TRAINER_CHALLENGER_SHARE", "1", "must be in [0.0, 1.0)"),
        ("STREAMREC_TAIL_KNOB", "nan", "must be in [0.0, inf)"),
        ("STREAMREC_NEW_ITEM_BOOST", "-1", "must be in [0.0, inf)"),
    ],
)
def test_bad_setting_is_one_line(env: dict[str, str], name: str, value: str, expected: str) -> None:
    assert expected in one_line_error(run(["config"], {**env, name: value}))


def test_bad_settings_file_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[streamrec]\nno_such_setting = 1\n")
    assert "unknown settings" in one_line_error(run(["--config", str(bad), "config"], env))
    bad.write_text("this is not toml")
    assert "settings:" in one_line_error(run(["--config", str(bad), "config"], env))


def test_stale_broker_file_is_one_line_at_once(env: dict[str, str]) -> None:
    data = Path(env["STREAMREC_DATA_DIR"])
    data.mkdir(parents=True)
    (data / "broker.url").write_text(f"kafka://127.0.0.1:{free_port()}")  # nothing listens there
    message = one_line_error(run(["items", "load", "--dataset", "ml-100k"], env))
    assert "no broker answers" in message and "broker.url" in message


def test_unreachable_configured_broker_is_one_line(env: dict[str, str]) -> None:
    message = one_line_error(run(["topics", "list"], {**env, "STREAMREC_BROKER": f"kafka://127.0.0.1:{free_port()}"}))
    assert "no broker answers" in message


def test_busy_http_port_stops_up_before_anything_starts(env: dict[str, str], busy_port: int) -> None:
    result = run(["up", "--recommender", "popularity"], {**env, "STREAMREC_HTTP_PORT": str(busy_port)})
    assert "already in use" in one_line_error(result)
    assert not (Path(env["STREAMREC_DATA_DIR"]) / "logs").exists()


def test_unknown_recommender_in_settings_stops_up(env: dict[str, str]) -> None:
    result = run(["up"], {**env, "STREAMREC_RECOMMENDER": "nonesuch", "STREAMREC_HTTP_PORT": str(free_port())})
    assert "nonesuch" in one_line_error(result)


@pytest.mark.parametrize("command", [["up"], ["worker"], ["serve"]])
@pytest.mark.parametrize(
    ("experiment", "expected"),
    [
        ('{"name": "x"}', "expected JSON"),
        ("x=a:popularity,b:nonesuch", "nonesuch"),
        ("x=a:popularity:0,b:trending:1", "positive"),
    ],
)
def test_a_bad_experiment_setting_stops_the_command_before_anything_starts(
    env: dict[str, str], command: list[str], experiment: str, expected: str
) -> None:
    """Not a traceback in a worker or server log after a broker has started."""
    settings = {"STREAMREC_EXPERIMENT": experiment, "STREAMREC_HTTP_PORT": str(free_port())}
    result = run([*command, "--recommender", "popularity"] if command != ["serve"] else command, {**env, **settings})
    assert expected in one_line_error(result)
    assert not (Path(env["STREAMREC_DATA_DIR"]) / "logs").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{oops", "cannot read"),
        (b"", "cannot read"),
        (b"[1, 2]", "holds no experiments"),
        (b'{"rows": []}', "holds no experiments"),
        (b'{"experiments": {"e": {"arms": 5}}}', "not an experiment summary"),
        (
            b'{"experiments": {"e": {"arms": {"a": {"recommender": "p", "share": "half"}}}}}',
            "not an experiment summary",
        ),
    ],
)
def test_a_corrupt_or_foreign_report_is_one_line(
    env: dict[str, str], tmp_path: Path, content: bytes, expected: str
) -> None:
    report = tmp_path / "report.json"
    report.write_bytes(content)
    assert expected in one_line_error(run(["experiments", "--report", str(report)], env))


def test_a_server_answering_something_else_is_one_line(env: dict[str, str]) -> None:
    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not streamrec</html>")

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        result = run(["experiments", "--url", f"http://127.0.0.1:{server.server_address[1]}"], env)
        server.shutdown()
    assert "cannot read" in one_line_error(result)


MISSING = "20990101T000000000000Z-00"


@pytest.mark.parametrize(
    ("command", "settings"),
    [
        (["worker"], {"STREAMREC_RECOMMENDER": f"transformer#{MISSING}"}),
        (["up"], {"STREAMREC_EXPERIMENT": f"t=a:fusion#{MISSING},b:popularity"}),
        (["backtest", "--dataset", "ml-100k", "--experiment", f"t=a:transformer#{MISSING},b:popularity"], {}),
    ],
    ids=["worker", "up", "backtest"],
)
def test_a_pinned_version_that_does_not_exist_stops_the_command_at_once(
    env: dict[str, str], command: list[str], settings: dict[str, str]
) -> None:
    """Not after the backtest trained a model or a worker started, in its log."""
    result = run(command, {**env, **settings, "STREAMREC_HTTP_PORT": str(free_port())})
    assert f"no model version {MISSING}" in one_line_error(result)
    assert not (Path(env["STREAMREC_DATA_DIR"]) / "logs").exists()


def test_model_dir_follows_data_dir() -> None:
    assert Settings.load(env={"STREAMREC_DATA_DIR": "/srv/rec"}).model_dir == "/srv/rec/models"
    assert Settings.load(env={"STREAMREC_DATA_DIR": "/srv/rec", "STREAMREC_MODEL_DIR": "/m"}).model_dir == "/m"
    assert Settings.load(env={}).with_(data_dir="/d").model_dir == "/d/models"
    assert Settings.load(env={"STREAMREC_MODEL_DIR": "/m"}).with_(data_dir="/d").model_dir == "/m"
