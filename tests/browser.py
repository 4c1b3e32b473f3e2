"""Headless Chromium as the browser tests run it (Debian's package; .ci/run installs it)."""

from __future__ import annotations

# No sandbox (containers), no GPU, and nothing that reaches the network on its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
