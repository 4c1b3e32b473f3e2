"""The topics streamrec uses and how many partitions each gets.

Partition counts are fixed at creation (the embedded broker cannot add partitions),
and ``events`` and ``recommendations`` share one count so user-keyed state, input and
output are co-partitioned: a user's events, state and lists live on one partition.
"""

from __future__ import annotations

from streamrec.settings import Settings

# Catalog, learning log and dead letters are read whole by every reader: one partition
# keeps their order total.
BROADCAST_PARTITIONS = 1


def topic_specs(settings: Settings) -> dict[str, tuple[str, int]]:
    """Role -> (topic name, partition count) for every topic streamrec uses."""
    return {
        "events": (settings.topic_events, settings.partitions),
        "recommendations": (settings.topic_recommendations, settings.partitions),
        "items": (settings.topic_items, BROADCAST_PARTITIONS),
        "learning": (settings.topic_learning, BROADCAST_PARTITIONS),
        "dlq": (settings.topic_dlq, BROADCAST_PARTITIONS),
    }


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every topic's name with its partition count (for creating them up front)."""
    return dict(topic_specs(settings).values())
