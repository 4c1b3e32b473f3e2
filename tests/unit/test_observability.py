"""The Prometheus scrape config and the Grafana dashboard agree with the code and compose file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamrec.settings import Settings
from streamrec.streams.metrics import ServerMetrics, WorkerMetrics
from tests.unit.test_deployment import COMPOSE, SERVICES, WORKERS, env, mounts, settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = yaml.safe_load((ROOT / "infra" / "prometheus.yml").read_text())
GRAFANA = json.loads((ROOT / "infra" / "grafana" / "streamrec.json").read_text())


def exported_names() -> set[str]:
    """Every sample name the worker and the server export (histograms' series included)."""
    worker = WorkerMetrics()
    worker.watch([{}], lambda: 0, lambda: 0, lambda: {0: 0}, trusted=True)
    worker.model_swapped("m", "v1")

    class Lists:
        consumed = malformed = 0

        def __len__(self) -> int:
            return 0

    server = ServerMetrics(Lists())
    server.answered("/r", 200, 0.1)
    server.events.labels("accepted").inc()
    names = set()
    for metrics in (worker, server):
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
            names |= {s.name for s in family.samples}
    return names


def targets(job: str) -> list[str]:
    [config] = [c for c in PROMETHEUS["scrape_configs"] if c["job_name"] == job]
    return [t for static in config["static_configs"] for t in static["targets"]]


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    expected = {f"{name}:{settings(service).metrics_port}" for name, service in WORKERS.items()}
    assert set(targets("streamrec-worker")) == expected
    for service in WORKERS.values():
        assert settings(service).metrics_host == "0.0.0.0"  # reachable from the prometheus container


def test_server_is_scraped_and_reads_the_workers_for_its_dashboard() -> None:
    [server_name] = [n for n, s in SERVICES.items() if (s.get("command") or []) == ["serve"]]
    assert targets("streamrec-server") == [f"{server_name}:{settings(SERVICES[server_name]).http_port}"]
    urls = Settings.load(env=env(SERVICES[server_name])).worker_metrics_urls.split(",")
    assert sorted(urls) == sorted(f"http://{t}/metrics" for t in targets("streamrec-worker"))


def test_prometheus_and_grafana_mount_their_files() -> None:
    assert (ROOT / mounts(SERVICES["prometheus"])["/etc/prometheus/prometheus.yml"]).resolve() == (
        ROOT / "infra" / "prometheus.yml"
    )
    grafana = mounts(SERVICES["grafana"])
    for path in grafana.values():
        assert path in COMPOSE["volumes"] or (ROOT / path).exists(), path


def test_every_dashboard_query_names_exported_metrics() -> None:
    names = exported_names()
    exprs = [t["expr"] for panel in GRAFANA["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        used = {w for w in re.findall(r"[a-z_]+", re.sub(r'"[^"]*"|\[[^]]*\]', "", expr)) if w.startswith("streamrec_")}
        assert used and used <= names, (expr, used - names)
    ids = [panel["id"] for panel in GRAFANA["panels"]]
    assert len(ids) == len(set(ids))
