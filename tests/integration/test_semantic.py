"""Semantic endpoints over HTTP: text search and similar items through the newest model."""

from __future__ import annotations

import httpx
import pytest

from streamrec.infra.stack import Stack
from streamrec.models.artifact import save
from streamrec.models.text_encoder import TextEncoder
from streamrec.settings import Settings
from streamrec.streams.replay import produce_items
from tests.conftest import wait_for
from tests.topics import NEW, catalog, train_topic_model

pytestmark = pytest.mark.integration


def test_search_and_similar_items(settings: Settings, tmp_path) -> None:
    settings = settings.with_(model_dir=str(tmp_path / "models"), recommender="cooccurrence")
    with Stack(settings, serve=True) as stack:
        http = httpx.Client(base_url=stack.http_url, timeout=60)
        produce_items(catalog(), stack.settings)
        assert wait_for(lambda: http.get("/healthz").json()["items"] == len(catalog()))
        assert http.get("/v1/search", params={"q": "jazz"}).status_code == 503  # no model yet
        encoder = TextEncoder()
        result = train_topic_model(encoder)
        save(stack.settings.model_dir, result.model, result.vocab.ids, result.text, encoder.model_name)

        found = http.get("/v1/search", params={"q": "saxophone player in a night club", "k": 5}).json()["items"]
        assert [i["item_id"].split("-")[0] for i in found] == ["jazz"] * 5
        assert found[0]["title"].startswith("Jazz nights")

        similar = http.get("/v1/items/food-1/similar", params={"k": 4}).json()["items"]
        assert "food-1" not in {i["item_id"] for i in similar}
        assert sum(i["item_id"].startswith("food-") for i in similar) >= 3

        produce_items([NEW], stack.settings)  # searchable the moment it is announced
        assert wait_for(lambda: http.get("/healthz").json()["items"] == len(catalog()) + 1)
        found = http.get("/v1/search", params={"q": "astronauts exploring a galaxy", "k": 3}).json()["items"]
        assert NEW.item_id in {i["item_id"] for i in found}
        assert http.get("/v1/items/nope/similar").status_code == 404
        assert http.get("/v1/search", params={"q": ""}).status_code == 422
