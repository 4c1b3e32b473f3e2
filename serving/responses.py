"""What the HTTP API answers, as models (they are the response schemas of /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streamrec.streams.contracts import RecommendationMessage, RecommendedItem


class ServedItem(RecommendedItem):
    """A recommended (or found) item with its catalog title."""

    title: str = Field(description="the catalog's title, or the item_id if the catalog has none")


class ServedList(RecommendationMessage):
    """A user's latest published list, titled, cut to ``k`` (and a category, if asked)."""

    model_config = ConfigDict(title="ServedList")

    items: list[ServedItem]  # type: ignore[assignment]  # the topic's items, titled


class SearchResult(BaseModel):
    query: str
    items: list[ServedItem]


class SimilarItems(BaseModel):
    item_id: str
    items: list[ServedItem]


class EventBatch(BaseModel):
    """Body of ``POST /v1/events/batch``: each event is validated on its own."""

    events: list[Any] = Field(
        min_length=1,
        description="events as in POST /v1/events",
        json_schema_extra={"items": {"$ref": "#/components/schemas/EventMessage"}},
    )


class Accepted(BaseModel):
    """The broker acknowledged the event (acks=all): it will be processed."""

    accepted: bool = True
    event_id: str = Field(description="the event's id (given, or assigned): a retry with it is deduplicated")


class Rejected(BaseModel):
    index: int = Field(description="position in the batch")
    reason: str


class BatchAccepted(BaseModel):
    """Every valid event of the batch was acknowledged by the broker."""

    accepted: int
    event_ids: list[str] = Field(description="ids of the accepted events, in batch order")
    rejected: list[Rejected] = Field(description="invalid events, not sent")


class Health(BaseModel):
    status: str = "ok"
    users_with_lists: int
    lists_consumed: int
    lists_malformed: int
    items: int
