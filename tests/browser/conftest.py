"""Fixtures of the dashboard's browser tests: Debian's Chromium driven by Playwright.

No browser is ever downloaded: Playwright is pointed at the ``chromium`` package's binary
(``.ci/run`` installs it). Without it the tests skip under the registered reason, unless
``CI`` is set: there a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Where Debian's package puts the browser (``chromium`` on PATH runs a wrapper script).
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
SKIP_REASON = "Chromium is not installed: apt-get install chromium (Debian's package)"
#: A tablet held landscape: the size the docs' pictures are taken at.
TABLET = {"width": 1180, "height": 820}


def chromium_binary() -> Path | None:
    found = next((Path(p) for p in CHROMIUM_CANDIDATES if Path(p).is_file()), None)
    if found is None and shutil.which("chromium"):
        found = Path(str(shutil.which("chromium")))
    return found


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    path = chromium_binary()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{SKIP_REASON} (CI must run the browser tests; .ci/run installs it)")
        pytest.skip(SKIP_REASON)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True,
            # Root in a container has no user namespaces for Chromium's sandbox.
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            browser.close()
