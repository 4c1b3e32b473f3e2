"""A small causal transformer over a user's recent events (SASRec-style, text-aware).

Token ``t`` of a window (oldest first, left-padded to ``window``) is

.. math:: x_t = v(i_t) + E_{type}[e_t] + E_{gap}[b(\\Delta_t)] + E_{pos}[t],
          \\quad b(\\Delta) = 1 + \\min(\\lfloor \\log_2(1 + \\Delta) \\rfloor, B - 2)

with ``Δ_t`` the seconds since the previous event (bucket 0 = first event or padding) and
the item representation fusing a learned ID embedding with the item's text embedding:

.. math:: v(i) = E_{id}[i] + W \\, text(i)

Items without an ID row (unknown at training time, ID index 0) use ``W text(i)`` alone;
training drops IDs at random (`SequenceConfig.id_dropout`) so that part stands on its own.
Pre-LayerNorm causal blocks and a final LayerNorm give ``h_t``; the user vector is the
output at the newest position and an item's score is ``h \\cdot v(i)`` (tied embeddings),
so a brand-new item gets a scoring vector from its text alone.

>>> import torch
>>> net = SequenceEncoder(SequenceConfig(n_items=5, text_dim=8))
>>> items = net.item_vectors(torch.tensor([[0, 0, 3, 1]]), torch.zeros(1, 4, 8))
>>> types = torch.tensor([[0, 0, 1, 3]]); ts = torch.tensor([[0.0, 0.0, 10.0, 70.0]])
>>> net(items, types, gap_buckets(ts, types > 0, 32)).shape
torch.Size([1, 4, 64])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from streamrec.models.base import ItemVocab
from streamrec.types import EVENT_TYPE_INDEX, EVENT_TYPES, WINDOW, Event, Interaction

# log2 buckets of the gap to the previous event: 30 covers a second to ~30 years.
GAP_BUCKETS = 32


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
    n_items: int  # items with an ID embedding: indices 1..n_items (0 = no ID / padding)
    text_dim: int = 384
    d: int = 64
    layers: int = 2
    heads: int = 2
    window: int = WINDOW
    # Regularisation that matters on small logs such as ml-100k (SASRec uses 0.2-0.5).
    dropout: float = 0.3
    # Share of item IDs hidden during training so text-only vectors (new items) are usable.
    id_dropout: float = 0.1
    gap_buckets: int = GAP_BUCKETS


# One user's window as arrays: (catalog index, event type + 1, ts), oldest first (`encode_events`).
Window = tuple[np.ndarray, np.ndarray, np.ndarray]


def gap_buckets(ts: torch.Tensor, valid: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """Log2 bucket of the gap to the previous valid event; 0 for the first event and padding.

    >>> gap_buckets(torch.tensor([[0.0, 5.0, 5.0, 1e9]]), torch.tensor([[False, True, True, True]]), 32)
    tensor([[ 0,  0,  1, 30]])
    >>> gap_buckets(torch.tensor([[7.0]]), torch.tensor([[True]]), 32)  # one event: no gap
    tensor([[0]])
    """
    gap = (ts[:, 1:] - ts[:, :-1]).clamp(min=0)
    bucket = 1 + torch.floor(torch.log2(1 + gap)).long().clamp(max=n_buckets - 2)
    bucket = torch.where(valid[:, 1:] & valid[:, :-1], bucket, 0)
    return torch.cat([torch.zeros(len(ts), 1, dtype=bucket.dtype), bucket], dim=1)


class Block(nn.Module):
    """Pre-LayerNorm causal self-attention + feed-forward, both residual."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """``(B, L, d)`` -> ``(B, Q, d)``: the outputs at the last ``queries`` positions (all by default).

        Every position still serves as key and value; only the newest ones are computed
        as queries, which is all a user vector needs from the top block.
        """
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        keep = slice(n - (queries or n), n)
        q, mask, x = q[:, :, keep], mask[:, :, keep], x[:, keep]
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.out(att.transpose(1, 2).reshape(b, q.shape[2], d)))
        return x + self.drop(self.ff(self.norm2(x)))


class SequenceEncoder(nn.Module):
    """Windows of events -> one vector per position; `item_vectors` for the tied output."""

    def __init__(self, config: SequenceConfig) -> None:
        super().__init__()
        c = self.config = config
        self.id_emb = nn.Embedding(c.n_items + 1, c.d, padding_idx=0)
        self.text_proj = nn.Linear(c.text_dim, c.d, bias=False)
        self.type_emb = nn.Embedding(len(EVENT_TYPES) + 1, c.d, padding_idx=0)
        self.gap_emb = nn.Embedding(c.gap_buckets, c.d)
        self.pos_emb = nn.Embedding(c.window, c.d)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.d, c.heads, c.dropout) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.d)
        nn.init.normal_(self.id_emb.weight, std=1 / math.sqrt(c.d))
        with torch.no_grad():
            self.id_emb.weight[0].zero_()

    def item_vectors(self, ids: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``v(i) = E_id[i] + W text(i)``; ID index 0 means text alone."""
        return self.id_emb(ids) + self.text_proj(text)

    def forward(
        self, items: torch.Tensor, types: torch.Tensor, gaps: torch.Tensor, last_only: bool = False
    ) -> torch.Tensor:
        """``(B, L, d)`` item vectors `item_vectors` and ``(B, L)`` event types / gap buckets -> ``(B, L, d)``
        (``(B, 1, d)``, the newest position alone, with ``last_only``).

        Event types are ``EVENT_TYPE_INDEX + 1``; type 0 marks padding, which nobody
        attends (each position always attends itself, so no attention row is empty).
        Positions count back from the newest event, so left padding changes no output.
        """
        n = types.shape[1]
        valid = types > 0
        pos = torch.arange(self.config.window - n, self.config.window)
        x = items + self.type_emb(types) + self.gap_emb(gaps) + self.pos_emb(pos)
        x = self.drop(x * valid.unsqueeze(-1))
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        mask = (causal & valid[:, None, :]) | torch.eye(n, dtype=torch.bool)
        mask = mask.unsqueeze(1)  # (B, 1, L, L): same for every head
        for i, block in enumerate(self.blocks):
            x = block(x, mask, 1 if last_only and i == len(self.blocks) - 1 else None)
        return self.norm(x)


def pack(windows: Sequence[tuple[np.ndarray, ...]], length: int) -> tuple[torch.Tensor, ...]:
    """Left-pad each window's arrays (catalog index, event type + 1, ts, ...) to ``length``.

    The newest ``length`` entries are kept; the last field stays float64 (timestamps),
    the others become int64 (so extra integer fields go before ts).

    >>> idx, types, ts = pack([(np.array([4, 7]), np.array([1, 3]), np.array([0.0, 9.0]))], 3)
    >>> idx.tolist(), types.tolist()
    ([[0, 4, 7]], [[0, 1, 3]])
    """
    fields = len(windows[0]) if windows else 3
    out = np.zeros((fields, len(windows), length), dtype=np.float64)  # numpy: cheap row writes
    for row, arrays in enumerate(windows):
        n = min(len(arrays[0]), length)
        if n:
            for field, values in enumerate(arrays):
                out[field, row, length - n :] = values[-n:]
    packed = torch.from_numpy(out)
    return (*(f.long() for f in packed[:-1]), packed[-1])


def encode_last(model: SequenceEncoder, windows: Sequence[Window], items: torch.Tensor) -> torch.Tensor:
    """User vectors ``(B, d)``: the output at the newest position of each window.

    ``windows`` hold catalog indices into ``items``, the ``(n + 1, d)`` item-vector table
    (row 0 = padding). They are padded to the longest of them, not to the model's window:
    padding changes no output, and attention costs grow with the square of the length.
    """
    longest = max((len(w[0]) for w in windows), default=0)
    idx, types, ts = pack(windows, min(max(longest, 1), model.config.window))
    gaps = gap_buckets(ts, types > 0, model.config.gap_buckets)
    return model(items[idx], types, gaps, last_only=True)[:, -1]


def encode_users(model: SequenceEncoder, windows: Sequence[Window], items: torch.Tensor, batch: int) -> torch.Tensor:
    """`encode_last` in chunks of ``batch`` windows of similar length (shortest first), in
    the order given: a few long windows then pad no chunk but their own."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i][0]))
    out = torch.zeros(len(windows), model.config.d)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        out[chunk] = encode_last(model, [windows[i] for i in chunk], items)
    return out


def encode_events(events: Sequence[Event | Interaction], vocab: ItemVocab) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(catalog index = vocab index + 1, event type + 1, ts)`` arrays of a log or a window;
    unknown items dropped.

    >>> encode_events([Interaction("b", "click", 5.0), Interaction("x", "view", 6.0)], ItemVocab(["a", "b"]))
    (array([2]), array([2]), array([5.]))
    """
    kept = [e for e in events if e.item_id in vocab]
    return (
        vocab.indices(e.item_id for e in kept) + 1,
        np.array([EVENT_TYPE_INDEX[e.event_type] + 1 for e in kept], dtype=np.int64),
        np.array([e.ts for e in kept], dtype=np.float64),
    )
