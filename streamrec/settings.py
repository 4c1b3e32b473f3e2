"""One settings object for every streamrec process.

Precedence, lowest to highest: defaults < config file (TOML, ``STREAMREC_CONFIG`` or
``--config``) < environment (``STREAMREC_<FIELD>``) < explicit overrides (CLI flags).

>>> s = Settings.load(env={"STREAMREC_K": "20"}, overrides={"window": 30})
>>> (s.k, s.window, s.topic_events)
(20, 30, 'events')
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "STREAMREC_"
EMBEDDED = "embedded"
# What `Settings.as_env(hide_secrets=True)` shows instead of a password or an API key.
HIDDEN = "<hidden>"
MODELS_SUBDIR = "models"
MAX_PORT = 65535
# Float settings and their range [low, high): checked at start-up, not where first used (a
# challenger share of 1 would fail only after the trainer's first round; NaN never fails).
BOUNDED = {
    "trainer_challenger_share": (0.0, 1.0),
    "tail_knob": (0.0, math.inf),
    "new_item_boost": (0.0, math.inf),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Effective configuration; every field can be set as ``STREAMREC_<NAME>``."""

    # Where the broker is: "embedded" starts Tansu on loopback; "kafka://host:port" uses it.
    broker: str = EMBEDDED
    topic_events: str = "events"
    topic_items: str = "items"
    topic_recommendations: str = "recommendations"
    topic_dlq: str = "events.dlq"
    # Applied events shared by all workers for item-side learning (streams/learning.py).
    topic_learning: str = "events.learning"
    partitions: int = 4
    # Length of the per-user recent-event window the models see.
    window: int = 50
    k: int = 10
    # Besides purchases, never recommend what the user met in their last N events.
    exclude_recent: int = 50
    data_dir: str = ".streamrec"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Which recommender the worker publishes: a name of streamrec.models.registry.FACTORIES
    # ("transformer", "fusion", "fusion+tail", "cooccurrence", "popularity", ...).
    recommender: str = "transformer"
    # Interest carried by one event of each type, for every model's item statistics.
    event_weights: str = "view=1,click=2,purchase=4"
    # A/B experiment (models/experiments.py): "" = none; "name=arm:recommender[:share],..."
    # (first arm = control), e.g. "tail=control:fusion:50,tail:fusion+tail@0.5:50", or its JSON.
    experiment: str = ""
    # Long-tail knob of the "+tail" re-ranker (models/rerank.py): logit penalty per e-fold of an
    # item's recent exposure; 0 = off. 0.5: the largest knob within 5% of the transformer's
    # NDCG@10 on ml-100k both offline and in the backtest (docs/fusion.md).
    tail_knob: float = 0.5
    # β of the transformer's new-item boost (models/transformer.py): 1 scores an item with no
    # interactions as if its ID added the average amount; 0 = its text alone (docs/cold_start.md).
    new_item_boost: float = 1.0
    # Model versions; "" = <data_dir>/models, so STREAMREC_DATA_DIR moves them too.
    model_dir: str = ""
    # Consumer fetch wait (ms); Faust hard-codes 1500 ms, which caps freshness at ~1 s.
    fetch_wait_ms: int = 10
    # Micro-batch: at most this many events, waiting at most this long for them.
    batch_max: int = 256
    batch_window_s: float = 0.01
    max_event_bytes: int = 4096
    # Faust's check that a table's changelog matches the broker's end offsets after a
    # restart. Off on the embedded broker, which reports end offsets wrong.
    recovery_check: int = 1
    # Kafka client security, passed to every client (Faust and confluent-kafka alike).
    # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL; SASL needs mechanism, username, password.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = dataclasses.field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    # Idempotent producers (no duplicates from producer retries). Apache Kafka supports
    # them; the embedded broker does not, so it is off unless the deployment turns it on.
    kafka_idempotence: int = 0
    # HTTP API keys (bearer tokens), comma-separated; /v1/* requires one when any is set.
    # Never printed in a repr. Required to serve on a non-loopback address.
    http_api_keys: str = dataclasses.field(default="", repr=False)
    # A file holding more keys (comma- or line-separated): a Docker or Kubernetes secret.
    http_api_keys_file: str = ""
    # Serve a non-loopback address without keys anyway (only behind an authenticating proxy).
    http_allow_open: int = 0
    # Largest request body (413 beyond it), enforced while the body is read; one event's
    # body may not exceed max_event_bytes.
    http_max_body_bytes: int = 1_048_576
    # Most events in one POST /v1/events/batch.
    http_batch_max: int = 1000
    # How long POST /v1/events waits for the broker to acknowledge (acks=all) before 503.
    http_ack_timeout_s: float = 5.0
    # Continual trainer (`streamrec trainer`, models/trainer.py): a round every N new events
    # or T seconds, whichever comes first. Rounds every 5000 events (5% of ml-100k) gained
    # 2.4% NDCG@10 there, every 4000 gained 39% on the drift stream (docs/trainer.md).
    trainer_every_events: int = 5000
    trainer_every_s: float = 3600.0
    # Events the trainer keeps (a sliding window): bounds its memory and each round's time.
    trainer_history: int = 50000
    # Test hook: 1 shuffles every candidate's weights, so the promotion gate must refuse it.
    trainer_degrade: int = 0
    # Champion/challenger (models/challenger.py): > 0 puts each gated candidate on this share
    # of live traffic, promoted or retired on its online NDCG@10 (0: promoted at once). With
    # it, `trainer_degrade` breaks the candidate after the offline gate, for the online rule.
    trainer_challenger_share: float = 0.0
    # `streamrec up` starts the trainer as a child process (0: never; `up --no-trainer` too).
    trainer_enabled: int = 1
    # Events whose item is not in the catalog yet wait (parked, uncommitted) for it at most
    # this many at once and this long, then go to the DLQ: an item announced just before
    # its first event may still be in flight to the worker's catalog reader.
    max_parked: int = 10_000
    park_s: float = 5.0
    # Prometheus endpoint of a worker (GET /metrics), loopback by default; 0 = no endpoint.
    # A local `Stack` gives each of its workers a free port instead (`streamrec up` prints them).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9400
    # Where the HTTP server keeps each user's latest list (RocksDB) with the offsets it read them
    # to, so a restart resumes there; "" = a temporary folder, deleted at exit (the server then
    # re-reads the topic). `streamrec serve` uses <data_dir>/serving/lists unless this is set.
    lists_dir: str = ""
    # Lists the server keeps in memory (least recently asked for goes first): ~0.5 KB each for
    # 10 items, so 100k ≈ 50 MB; the others are one RocksDB read (~10-20 µs) away.
    lists_cache_users: int = 100_000
    # Partitions of `recommendations` this server follows, comma-separated ("" = all). A
    # user's lists are on partition_for(user_id, partitions) (streams/kafka.py), as are their
    # events: a router sends each user to a server that follows it; others answer 421.
    serving_partitions: str = ""
    # The workers' metrics endpoints the HTTP server reads for /dashboard, comma-separated
    # (``http://127.0.0.1:9400/metrics,...``); `Stack` sets it for the server it starts.
    worker_metrics_urls: str = ""

    def __post_init__(self) -> None:
        """Resolve the default `model_dir` (the one place it is derived) and check values
        that would otherwise fail late, deep inside a child process.

        >>> Settings(data_dir="/srv/rec").model_dir
        '/srv/rec/models'
        >>> Settings(http_port=70000)
        Traceback (most recent call last):
        ...
        ValueError: setting http_port=70000 is not a port (0-65535)
        """
        if not self.model_dir:
            object.__setattr__(self, "model_dir", default_model_dir(self.data_dir))
        for name in ("http_port", "metrics_port"):
            if not 0 <= getattr(self, name) <= MAX_PORT:
                raise ValueError(f"setting {name}={getattr(self, name)} is not a port (0-{MAX_PORT})")
        for name in ("partitions", "k", "window", "batch_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"setting {name}={getattr(self, name)} must be at least 1")
        if not (self.served_partitions or set()) <= set(range(self.partitions)):
            raise ValueError(
                f"setting serving_partitions={self.serving_partitions!r} names a partition beyond 0-{self.partitions - 1}"
            )
        for name, (low, high) in BOUNDED.items():
            if not low <= getattr(self, name) < high:  # NaN fails both
                raise ValueError(f"setting {name}={getattr(self, name)} must be in [{low}, {high})")
        if self.broker != EMBEDDED and not self.broker.startswith("kafka://"):
            raise ValueError(f"setting broker={self.broker!r} is neither {EMBEDDED!r} nor kafka://host:port")

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` form for confluent-kafka clients."""
        return self.broker.removeprefix("kafka://")

    @property
    def served_partitions(self) -> frozenset[int] | None:
        """The partitions of ``recommendations`` a server follows (`serving_partitions`); None = all.

        >>> Settings(serving_partitions="0, 2").served_partitions, Settings().served_partitions
        (frozenset({0, 2}), None)
        """
        parts = [p for p in self.serving_partitions.replace(" ", "").split(",") if p]
        if not all(p.isdigit() for p in parts):
            raise ValueError(f"setting serving_partitions={self.serving_partitions!r} is not a list of partitions")
        return frozenset(map(int, parts)) if parts else None

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes``; a default `model_dir` follows a new `data_dir`.

        >>> Settings().with_(data_dir="/tmp/x").model_dir
        '/tmp/x/models'
        """
        if "data_dir" in changes and "model_dir" not in changes and self.model_dir == default_model_dir(self.data_dir):
            changes["model_dir"] = ""
        return dataclasses.replace(self, **changes)

    def as_env(self, hide_secrets: bool = False) -> dict[str, str]:
        """Environment that reproduces these settings in a child process; with ``hide_secrets``
        the secret fields (declared ``repr=False``) read `HIDDEN` when set, for printing."""
        return {
            ENV_PREFIX + f.name.upper(): HIDDEN
            if hide_secrets and not f.repr and getattr(self, f.name)
            else str(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }

    @classmethod
    def load(
        cls,
        file: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = file or env.get(ENV_PREFIX + "CONFIG")
        if path:
            values.update(_read_file(Path(path)))
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = raw
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls(**{k: _coerce(cls, k, v) for k, v in values.items()})


def default_model_dir(data_dir: str) -> str:
    """Where model versions live unless `model_dir` says otherwise."""
    return str(Path(data_dir) / MODELS_SUBDIR)


def _read_file(path: Path) -> dict[str, Any]:
    data = tomllib.loads(path.read_text())
    section = data.get("streamrec", data)
    unknown = set(section) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
    return dict(section)


def _coerce(cls: type[Settings], name: str, value: Any) -> Any:
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    if name not in types:
        raise ValueError(f"unknown setting {name!r}")
    kind = {"int": int, "float": float, "str": str}[str(types[name])]
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting {name}={value!r} is not a valid {kind.__name__}") from exc
