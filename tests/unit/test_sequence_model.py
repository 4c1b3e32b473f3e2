"""The sequence encoder is causal, and an artifact reloads to the very same function."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from streamrec.models import artifact
from streamrec.models.fusion import WEIGHTS_FILE, FusionWeights
from streamrec.models.sequence import SequenceConfig, SequenceEncoder, encode_last, encode_users, gap_buckets, pack
from streamrec.models.versions import MANIFEST, UnsupportedFormat, new_version
from tests.published import newest_artifact

torch.set_num_threads(1)
N_ITEMS, TEXT_DIM = 30, 16


@pytest.fixture
def net() -> SequenceEncoder:
    torch.manual_seed(0)
    return SequenceEncoder(SequenceConfig(n_items=N_ITEMS, text_dim=TEXT_DIM, window=8)).eval()


def _text() -> torch.Tensor:
    text = torch.randn(N_ITEMS + 1, TEXT_DIM, generator=torch.Generator().manual_seed(1))
    text[0] = 0
    return text


def _window(items: list[int], types: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    types = types or [1] * len(items)
    return np.array(items), np.array(types), np.arange(len(items), dtype=np.float64) * 60.0


def _outputs(net: SequenceEncoder, windows: list, text: torch.Tensor) -> torch.Tensor:
    idx, types, ts = pack(windows, net.config.window)
    items = net.item_vectors(torch.arange(N_ITEMS + 1), text)
    with torch.inference_mode():
        return net(items[idx], types, gap_buckets(ts, types > 0, net.config.gap_buckets))


def test_changing_a_later_event_leaves_earlier_positions_unchanged(net: SequenceEncoder) -> None:
    text = _text()
    base = _outputs(net, [_window([3, 5, 7, 9, 11])], text)
    changed = _outputs(net, [_window([3, 5, 7, 9, 20], [1, 1, 1, 1, 3])], text)
    # Same 7 earlier positions (3 padding + 4 events), a different newest one.
    torch.testing.assert_close(base[0, :-1], changed[0, :-1])
    assert not torch.allclose(base[0, -1], changed[0, -1])


def test_earlier_events_do_change_later_positions(net: SequenceEncoder) -> None:
    text = _text()
    base = _outputs(net, [_window([3, 5, 7, 9, 11])], text)
    changed = _outputs(net, [_window([4, 5, 7, 9, 11])], text)
    assert not torch.allclose(base[0, -1], changed[0, -1])


def test_padding_does_not_change_the_user_vector(net: SequenceEncoder) -> None:
    text = _text()
    items = net.item_vectors(torch.arange(N_ITEMS + 1), text)
    with torch.inference_mode():
        short = encode_last(net, [_window([3, 5])], items)
        batched = encode_last(net, [_window([3, 5]), _window([1, 2, 3, 4, 5, 6, 7, 8])], items)
    torch.testing.assert_close(short[0], batched[0])


def test_user_vectors_in_length_buckets_equal_the_full_forward_pass(net: SequenceEncoder) -> None:
    """`encode_users` pads each chunk to its longest window and computes the top block for
    the newest position only: the same vectors as every position over the model's window."""
    rng = np.random.default_rng(3)
    lengths = [0, 1, 12, 3, 8, 2, 5, 1, 7]  # empty, longer than the window (8), mixed
    windows = [_window(rng.integers(1, N_ITEMS + 1, n).tolist(), rng.integers(1, 4, n).tolist()) for n in lengths]
    text = _text()
    items = net.item_vectors(torch.arange(N_ITEMS + 1), text)
    with torch.inference_mode():
        fast = encode_users(net, windows, items, batch=2)
    torch.testing.assert_close(fast, _outputs(net, windows, text)[:, -1])


def test_gap_buckets_are_logarithmic() -> None:
    ts = torch.tensor([[0.0, 0.0, 1.0, 3.0, 1003.0]])
    valid = torch.tensor([[False, True, True, True, True]])
    assert gap_buckets(ts, valid, 32).tolist() == [[0, 0, 2, 2, 10]]


def test_artifact_round_trip_gives_identical_outputs(net: SequenceEncoder, tmp_path: Path) -> None:
    text = _text()
    ids = [f"i{k}" for k in range(N_ITEMS)]
    path = artifact.save(tmp_path, net, ids, text.numpy(), "toy-text", {"ndcg@10": 0.5})
    loaded = artifact.load(path)
    windows = [_window([3, 5, 7]), _window([1, 2, 3, 4, 5, 6, 7, 8, 9])]
    reloaded = _outputs(loaded.model, windows, torch.from_numpy(loaded.item_text))
    torch.testing.assert_close(_outputs(net, windows, text), reloaded, rtol=0, atol=0)
    assert loaded.item_ids == ids
    assert loaded.manifest["metrics"] == {"ndcg@10": 0.5}
    assert loaded.text_model == "toy-text"


def test_latest_version_is_the_newest_complete_one(net: SequenceEncoder, tmp_path: Path) -> None:
    assert artifact.latest_version(tmp_path) is None
    text = np.zeros((N_ITEMS + 1, TEXT_DIM), np.float32)
    paths = [artifact.save(tmp_path, net, [f"i{k}" for k in range(N_ITEMS)], text, "t") for _ in range(3)]
    assert len({p.name for p in paths}) == 3
    assert artifact.latest_version(tmp_path) == paths[-1].name == max(p.name for p in paths)
    (tmp_path / "99999999T999999999999Z-00").mkdir()  # no manifest: an unfinished write
    assert artifact.latest_version(tmp_path) == paths[-1].name
    assert newest_artifact(tmp_path).path == paths[-1]


def test_a_failed_write_publishes_no_version_and_leaves_nothing(net: SequenceEncoder, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), new_version(tmp_path) as draft:
        (draft.folder / MANIFEST).write_text("{}")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_model_version_of_an_unknown_format_is_refused_clearly(net: SequenceEncoder, tmp_path: Path) -> None:
    text = np.zeros((N_ITEMS + 1, TEXT_DIM), np.float32)
    path = artifact.save(tmp_path, net, [f"i{k}" for k in range(N_ITEMS)], text, "t")
    FusionWeights.combsum(("trending",)).save(path)
    for file, load in ((path / MANIFEST, artifact.load), (path / WEIGHTS_FILE, FusionWeights.load)):
        data = json.loads(file.read_text())
        file.write_text(json.dumps(data | {"format": 99}))
        with pytest.raises(UnsupportedFormat, match="format 99, this streamrec reads format 1") as refused:
            load(path)
        assert (refused.value.path, refused.value.found, refused.value.supported) == (file, 99, 1)
