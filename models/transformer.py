"""The sequence-transformer recommender: artifact + text encoder + FAISS retrieval.

A user's vector is the `SequenceEncoder` output at the newest event of ``user.window``;
an item's vector is its fused representation ``v(i) = E_id[i] + W text(i)`` (text alone
for items the artifact does not know), and

.. math:: recommend(u, k) = \\operatorname{top}_k \\{(i, h_u \\cdot v(i)) :
          i \\text{ available}, i \\notin exclude(u)\\}

so an item announced through `update_items` is recommendable at once, with no interaction.
A new item's vector is ``W text(i)`` alone, so its score lacks the part an ID embedding
adds; the new-item boost restores its average:

.. math:: s(u, i_{new}) = h_u \\cdot W text(i) + \\beta \\, \\bar b, \\quad
          \\bar b = \\operatorname{mean}_{valid} h_u \\cdot E_{id}[t_u]

with ``b̄`` measured at training time (`models.training.id_contribution`) and ``β`` the
knob (`NEW_ITEM_BOOST`; 0 = text alone). A row a warm start grew from zero
(`models.continual.grow`) starts as text alone too, and learns its ID part from its
events; its boost fades as it learns, ``β b̄ max(0, 1 - n_i / N)`` after ``n_i`` events
(``N`` = `BOOST_FADE_EVENTS`), so an item does not fall below its text-only score the
moment it gets a row. FAISS takes the boost as one extra dimension: users carry a
constant 1 there, new items ``β b̄``, young rows their faded share, other items 0.
`search` ranks items by cosine between a text query and item texts (same text encoder);
`similar` ranks items by ``v(item) \\cdot v(i)``.

>>> rec = TransformerRecommender.from_dir(".streamrec/models")       # doctest: +SKIP
>>> rec.update_items([Item("new", "Space Opera (2026)", category="Sci-Fi")])  # doctest: +SKIP
>>> rec.recommend([UserContext("u", window=[Interaction("new", "view", 0.0)])], k=5)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from streamrec.models.artifact import Artifact, load_latest
from streamrec.models.base import ArrayRecommender, ItemVocab, TopK
from streamrec.models.retrieval import ItemIndex
from streamrec.models.sequence import encode_events, encode_users
from streamrec.models.text_encoder import TextEncoder
from streamrec.types import Item, Ranked, UserContext

# Users per forward pass in `embed`: the encoder's throughput peaks around 8-64 on 1 thread.
EMBED_BATCH = 64
# β of the new-item boost: 1 scores a new item as if its ID added the average amount.
# Measured by `streamrec evaluate --cold-start` (docs/cold_start.md): 0 leaves new items
# almost never shown; 1 brings cold-start HR@10 from ~0.01 to ~0.1.
NEW_ITEM_BOOST = 1.0
# Events after which a row grown from zero has learned its ID part and loses the boost.
# Without the fade, rounds scored new items with a few events below the frozen model's
# text-only score (NDCG@10 0.163 vs 0.205 on the drift bench: docs/trainer.md).
BOOST_FADE_EVENTS = 20


class TransformerRecommender(ArrayRecommender):
    """Serves an artifact; new catalog items are embedded from their text on arrival."""

    name = "transformer"

    def __init__(
        self, artifact: Artifact, encoder: TextEncoder | None = None, new_item_boost: float = NEW_ITEM_BOOST
    ) -> None:
        torch.set_num_threads(1)
        self.artifact, self.model = artifact, artifact.model.eval()
        self._encoder = encoder
        if encoder is not None and encoder.model_name != artifact.text_model:
            raise ValueError(f"artifact needs text model {artifact.text_model!r}, got {encoder.model_name!r}")
        # Catalog index = vocab index + 1 (0 = padding); ID rows follow the artifact's item map.
        self.catalog = ItemVocab(artifact.item_ids)
        with torch.inference_mode():
            ids = torch.arange(len(artifact.item_ids) + 1)
            self.item_vectors = self.model.item_vectors(ids, torch.from_numpy(artifact.item_text))
        self.texts = artifact.item_text  # catalog-aligned text vectors, row 0 = padding
        self.boost = new_item_boost * float(artifact.metrics.get("id_contribution", 0.0))
        self.index = ItemIndex(self.model.config.d + 1)  # + the boost dimension
        young = artifact.young
        fades = np.asarray([young_boost(young[i]) if i in young else 0.0 for i in artifact.item_ids], np.float32)
        self.index.add(artifact.item_ids, _with_boost(self.item_vectors[1:].numpy(), self.boost * fades))
        self.text_index: ItemIndex | None = None  # built on the first `search`

    @classmethod
    def from_dir(
        cls, model_dir: str | Path, encoder: TextEncoder | None = None, new_item_boost: float = NEW_ITEM_BOOST
    ) -> TransformerRecommender:
        """The newest artifact under ``model_dir``."""
        artifact = load_latest(model_dir)
        if artifact is None:
            raise FileNotFoundError(f"no model artifact under {model_dir}: run `streamrec train` first")
        return cls(artifact, encoder, new_item_boost)

    @property
    def artifact_version(self) -> str:
        return self.artifact.version

    @property
    def version(self) -> str:
        """``transformer@<artifact version>``: lists say exactly which model made them."""
        return f"{self.name}@{self.artifact.version}"

    @property
    def encoder(self) -> TextEncoder:
        """The text encoder, loaded on first use (only new items and `search` need it)."""
        if self._encoder is None:
            self._encoder = TextEncoder()
            if self._encoder.model_name != self.artifact.text_model:
                raise ValueError(f"artifact needs text model {self.artifact.text_model!r}")
        return self._encoder

    def embed(self, users: Sequence[UserContext]) -> np.ndarray:
        """User vectors ``(len(users), d)`` from their windows (unknown items are skipped)."""
        windows = [self._window(user) for user in users]
        with torch.inference_mode():
            return encode_users(self.model, windows, self.item_vectors, EMBED_BATCH).numpy()

    def recommend_arrays(self, users: Sequence[UserContext], k: int) -> TopK:
        missing = [i for i, user in enumerate(users) if user.vector is None]
        vectors = np.zeros((len(users), self.model.config.d), dtype=np.float32)
        if missing:
            vectors[missing] = self.embed([users[i] for i in missing])
        for i, user in enumerate(users):
            if user.vector is not None:
                vectors[i] = user.vector
        return self.index.search_arrays(_with_boost(vectors, 1.0), k, [user.exclude for user in users])

    def update_items(self, items: Iterable[Item]) -> None:
        """New items: text-only vectors, searchable at once; known items: availability."""
        items = list(items)
        new = [item for item in items if item.item_id not in self.catalog]
        if new:
            self._add(new)
        for item in items:
            self.index.set_available(item.item_id, item.available)
            if self.text_index is not None:
                self.text_index.set_available(item.item_id, item.available)

    def search(self, text: str, k: int) -> Ranked:
        """Available items whose text is closest (cosine) to ``text``."""
        if self.text_index is None:
            self.text_index = ItemIndex(self.texts.shape[1])
            self.text_index.add(self.catalog.ids, self.texts[1:])
            for item_id in self.catalog.ids:
                self.text_index.set_available(item_id, self.index.is_available(item_id))
        return self.text_index.search(self.encoder.encode([text]), k)[0]

    def similar(self, item_id: str, k: int) -> Ranked:
        """Available items ranked by ``v(item) \\cdot v(i)``, the item itself excluded."""
        vector = self.index.vector(item_id)
        if vector is None:
            return []
        return self.index.search(_with_boost(vector[None, :-1], 0.0), k, [{item_id}])[0]

    def _add(self, items: list[Item]) -> None:
        text = self.encoder.encode_items(items)
        for item in items:
            self.catalog.add(item.item_id)
        self.texts = np.concatenate([self.texts, text])
        with torch.inference_mode():
            vectors = self.model.item_vectors(torch.zeros(len(items), dtype=torch.long), torch.from_numpy(text))
        self.item_vectors = torch.cat([self.item_vectors, vectors])
        self.index.add([item.item_id for item in items], _with_boost(vectors.numpy(), self.boost))
        if self.text_index is not None:
            self.text_index.add([item.item_id for item in items], text)

    def _window(self, user: UserContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return encode_events(user.window[-self.model.config.window :], self.catalog)


def young_boost(events: int) -> float:
    """The share of the new-item boost a row grown from zero keeps after ``events`` events.

    >>> young_boost(0), young_boost(BOOST_FADE_EVENTS // 2), young_boost(BOOST_FADE_EVENTS)
    (1.0, 0.5, 0.0)
    """
    return max(0.0, 1.0 - events / BOOST_FADE_EVENTS)


def _with_boost(vectors: np.ndarray, value: float | np.ndarray) -> np.ndarray:
    """``vectors`` with the boost dimension appended (users: 1, new items: the boost, known:
    0, young rows: their faded share; ``value`` one for all or one per row)."""
    column = np.broadcast_to(np.asarray(value, dtype=np.float32), (len(vectors),))
    return np.hstack([vectors, column[:, None]])
