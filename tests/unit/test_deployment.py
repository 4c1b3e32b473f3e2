"""docker-compose.yml and infra/Dockerfile agree with the code they deploy.

No Docker engine needed: the compose file is parsed and checked against `Settings`, the
topic layout and itself; the Dockerfile against the project's pins and packages.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from streamrec.infra.commands.topics import topic_plan
from streamrec.settings import ENV_PREFIX, Settings
from streamrec.streams.topics import topic_partitions
from streamrec.streams.workdir import ready_marker

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
DOCKERFILE = (ROOT / "infra" / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETTING_VARS = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}


def env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def settings(service: dict) -> Settings:
    return Settings.load(env=env(service))


def mounts(service: dict) -> dict[str, str]:
    """Container path -> volume, from short-syntax ``volume:/path[:mode]`` entries."""
    pairs = (entry.split(":")[:2] for entry in service.get("volumes", []))
    return {target: source for source, target in pairs}


def command(service: dict) -> list[str]:
    return service.get("command") or []


STREAMREC = {name: s for name, s in SERVICES.items() if any(k.startswith(ENV_PREFIX) for k in env(s))}
WORKERS = {name: s for name, s in STREAMREC.items() if command(s)[:1] == ["worker"]}


def test_every_service_has_a_pinned_image_or_an_existing_build() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = ROOT / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file(), name
        if "image" in service:
            _, _, tag = service["image"].rpartition(":")
            assert tag and tag != "latest" and "/" not in tag, f"{name}: pin the image tag"


def test_streamrec_env_vars_are_settings() -> None:
    assert STREAMREC, "no service sets STREAMREC_* variables"
    for name, service in STREAMREC.items():
        unknown = {k for k in env(service) if k.startswith(ENV_PREFIX)} - SETTING_VARS
        assert not unknown, f"{name}: {unknown} are not Settings fields"
        settings(service)  # values must coerce to the fields' types
    assert set(re.findall(r"\bSTREAMREC_\w+", DOCKERFILE)) <= SETTING_VARS


def test_workers_have_distinct_names_and_data_volumes() -> None:
    assert len(WORKERS) >= 2
    names, volumes = [], []
    for service_name, service in WORKERS.items():
        worker = settings(service)
        name = command(service)[command(service).index("--name") + 1]
        names.append(name)
        volumes.append(mounts(service)[worker.data_dir])
        # A copy-pasted healthcheck would watch the other worker's marker.
        assert str(ready_marker(worker.data_dir, name)) in service["healthcheck"]["test"], service_name
    assert len(set(names)) == len(names), names
    assert len(set(volumes)) == len(volumes), volumes
    assert set(volumes) <= set(COMPOSE["volumes"])
    # A worker beyond the partition count would own no partition.
    assert len(WORKERS) <= min(settings(s).partitions for s in WORKERS.values())


def test_model_readers_and_writer_share_one_model_volume() -> None:
    # Hot reload works only if `train` writes where workers and the server look.
    users = [s for s in STREAMREC.values() if command(s)[:1] != ["topics"]]
    volumes = {mounts(s).get(settings(s).model_dir) for s in users}
    assert len(volumes) == 1 and None not in volumes, volumes


def test_broker_url_points_at_the_kafka_service_listener() -> None:
    for name, service in STREAMREC.items():
        url = urlsplit(settings(service).broker)
        assert url.scheme == "kafka", name
        kafka = SERVICES[str(url.hostname)]
        assert kafka["image"].startswith("apache/kafka:")
        kafka_env = env(kafka)
        advertised = dict(re.findall(r"(\w+)://([^,]+)", kafka_env["KAFKA_ADVERTISED_LISTENERS"]))
        listener = next(k for k, v in advertised.items() if v == url.netloc)
        assert f"{listener}://:{url.port}" in kafka_env["KAFKA_LISTENERS"].split(",")


def test_topics_service_creates_the_topics_every_service_uses() -> None:
    creators = [s for s in STREAMREC.values() if command(s) == ["topics", "create"]]
    assert len(creators) == 1
    wanted = settings(creators[0])
    for name, service in STREAMREC.items():
        used = settings(service)
        assert (used.broker, topic_partitions(used)) == (wanted.broker, topic_partitions(wanted)), name
    plan = topic_plan(wanted)
    assert {name: plan[name][0] for name in topic_partitions(wanted)} == topic_partitions(wanted)
    assert plan["streamrec-users-changelog"] == (wanted.partitions, {"cleanup.policy": "compact"})
    assert plan[wanted.topic_items][1]["cleanup.policy"] == "compact"
    for topic in (wanted.topic_events, wanted.topic_recommendations):
        assert "delete" in plan[topic][1]["cleanup.policy"] and int(plan[topic][1]["retention.ms"]) > 0


def test_depends_on_targets_exist_with_valid_conditions() -> None:
    for name, service in SERVICES.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}, which has no healthcheck"
            elif condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} must be one-shot"
            else:
                pytest.fail(f"{name}: unexpected condition {condition}")


def test_long_running_services_have_healthchecks() -> None:
    for name, service in SERVICES.items():
        if service.get("restart") != "no" and "profiles" not in service:
            assert "healthcheck" in service, name


def test_server_is_published_on_its_http_port() -> None:
    [server] = [s for s in STREAMREC.values() if command(s) == ["serve"]]
    served = settings(server)
    assert served.http_host == "0.0.0.0"  # loopback is unreachable from a published port
    assert f"8000:{served.http_port}" in server["ports"]
    assert f"127.0.0.1:{served.http_port}/healthz" in " ".join(server["healthcheck"]["test"])


def test_dockerfile_pins_and_copies_what_the_project_needs() -> None:
    torch = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    assert torch == "torch==2.13.0"
    assert re.search(r"pip install torch==2\.13\.0 --index-url \S+/whl/cpu\b", DOCKERFILE)
    assert "pip install -c constraints.txt ." in DOCKERFILE
    assert "pip install --no-deps recbole==1.2.1" in DOCKERFILE
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE, re.M)
    assert 'ENTRYPOINT ["streamrec"]' in DOCKERFILE
    packages = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    copied = set(re.findall(r"^COPY (\w+) \1$", DOCKERFILE, re.M))
    assert copied == packages, "the image must hold exactly the packages pyproject.toml installs"
