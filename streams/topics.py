"""The topics streamrec uses and how many partitions each gets.

Partition counts are fixed at creation (the embedded broker cannot add partitions),
and ``events`` and ``recommendations`` share one count so user-keyed state, input and
output are co-partitioned: a user's events, state and lists live on one partition.
"""

from __future__ import annotations

from infra.config import Settings

# Catalog and dead letters are low-volume and read whole by every reader: one partition
# keeps their order total.
BROADCAST_PARTITIONS = 1


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every public topic with its partition count."""
    return {
        settings.topic_events: settings.partitions,
        settings.topic_recommendations: settings.partitions,
        settings.topic_items: BROADCAST_PARTITIONS,
        settings.topic_dlq: BROADCAST_PARTITIONS,
    }
