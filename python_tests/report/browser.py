"""Headless Chromium for the report's browser tests, defined once."""

from __future__ import annotations

import shutil

from conftest import needs

CHROMIUM = shutil.which("chromium")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
"""Headless and offline: every host name fails to resolve, so a page that
fetched anything from the network would show it."""


def chromium() -> str:
    """The browser, else a skip; in CI (CI=true) a missing browser fails instead of skipping."""
    needs(CHROMIUM is not None, "chromium not installed (apt-get install chromium; .ci/run does)")
    assert CHROMIUM is not None
    return CHROMIUM
