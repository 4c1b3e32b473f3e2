"""``streamrec topics create|list``: every topic with its partition count and topic configs.

The local stack creates its topics itself (the embedded broker enforces no configs).
On Apache Kafka this command is where partitions, compaction and retention are decided:
run it once before the first worker (docker-compose runs it as a one-shot service).
"""

from __future__ import annotations

import click
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from streamrec.infra.broker import ADMIN_TIMEOUT_S, create_topics
from streamrec.infra.commands.options import connected
from streamrec.settings import EMBEDDED, Settings
from streamrec.streams.kafka import client_config
from streamrec.streams.topics import topic_partitions

DAY_MS = 24 * 60 * 60 * 1000
COMPACT = {"cleanup.policy": "compact"}


def topic_plan(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic -> (partitions, configs), the worker's table changelog included."""
    # Imported here: streams.worker pulls in Faust, which other commands do not need.
    from streamrec.streams.worker import APP_ID, USERS_TABLE

    configs = {
        # Workers keep their state in the changelog, so events only need to outlive an outage.
        settings.topic_events: {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
        # The server rebuilds "latest list per user" from here on start: compaction keeps one
        # list per user, deletion drops users idle for longer than the retention.
        settings.topic_recommendations: {"cleanup.policy": "compact,delete", "retention.ms": str(7 * DAY_MS)},
        # Every reader loads the whole catalog from offset 0: the latest record per item must stay.
        settings.topic_items: COMPACT,
        settings.topic_dlq: {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
        # Workers rebuild item-side statistics by reading it from offset 0: keep it all
        # (streams/learning.py; snapshots would bound it, see docs/operations.md).
        settings.topic_learning: {"cleanup.policy": "delete", "retention.ms": "-1"},
    }
    plan = {name: (n, configs[name]) for name, n in topic_partitions(settings).items()}
    # Faust names it "<app id>-<table>-changelog"; its partitions must equal the table's.
    plan[f"{APP_ID}-{USERS_TABLE}-changelog"] = (settings.partitions, COMPACT)
    return plan


@click.group()
def topics() -> None:
    """Topics on the broker."""


@topics.command("create")
@click.option("--replication", default=1, show_default=True, help="Replication factor (3 on a real cluster).")
@click.pass_obj
def topics_create(settings: Settings, replication: int) -> None:
    """Create missing topics; fail if an existing one has the wrong partition count."""
    settings = connected(settings)
    plan = topic_plan(settings)
    existing = AdminClient(client_config(settings)).list_topics(timeout=ADMIN_TIMEOUT_S).topics
    # Co-partitioning breaks silently if events, recommendations and the changelog disagree.
    wrong = {
        name: f"has {len(existing[name].partitions)}, needs {n}"
        for name, (n, _) in plan.items()
        if name in existing and len(existing[name].partitions) != n
    }
    if wrong:
        raise click.ClickException(f"existing topics with the wrong partition count: {wrong}")
    create_topics(
        settings.bootstrap_servers,
        {name: n for name, (n, _) in plan.items()},
        {name: config for name, (_, config) in plan.items()},
        replication,
    )
    for name, (n, config) in plan.items():
        click.echo(f"{name}: {n} partitions {config}")


@topics.command("list")
@click.pass_obj
def topics_list(settings: Settings) -> None:
    """Every topic on the broker: partitions and end offsets (records written so far).

    The embedded broker (Tansu) reports end offsets wrong (see docs: its high-watermark
    bug), so there they are marked untrustworthy.
    """
    embedded = settings.broker == EMBEDDED
    settings = connected(settings)
    topics_found = AdminClient(client_config(settings)).list_topics(timeout=ADMIN_TIMEOUT_S).topics
    consumer = Consumer({**client_config(settings), "group.id": "streamrec-topics-unused", "enable.auto.commit": False})
    try:
        for name in sorted(topics_found):
            partitions = sorted(topics_found[name].partitions)
            ends = [consumer.get_watermark_offsets(TopicPartition(name, p), ADMIN_TIMEOUT_S)[1] for p in partitions]
            note = "  (end offsets untrustworthy on the embedded broker)" if embedded else ""
            click.echo(f"{name}: {len(partitions)} partitions, end offsets {ends}{note}")
    finally:
        consumer.close()
