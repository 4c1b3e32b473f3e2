"""streamrec: a streaming real-time recommender.

The one import root. Its subpackages are the repository's top-level folders, one layer
each, and imports point down only (checked by ``tests/unit/test_layers.py``):

- `streamrec.types`, `streamrec.settings`: the ground (shared types, settings);
- `streamrec.models`: the learning (encoders, training, retrieval, ranking);
- `streamrec.streams`: the stream processing (contracts, topics, agents, state);
- `streamrec.serving`, `streamrec.infra`: the HTTP face and the running of things.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("streamrec")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
