"""``streamrec schema <topic>``: the JSON Schema of a topic's messages, from the contract models.

The schemas are generated from `streamrec.streams.contracts` (never written by hand),
so they always say what the code accepts and produces.
"""

from __future__ import annotations

import json

import click

from streamrec.streams.contracts import CONTRACTS, json_schema


@click.command()
@click.argument("contract", type=click.Choice(sorted(CONTRACTS)), default="events")
def schema(contract: str) -> None:
    """Print the JSON Schema of CONTRACT's messages (events, items, recommendations, dlq)."""
    click.echo(json.dumps(json_schema(contract), indent=2))
