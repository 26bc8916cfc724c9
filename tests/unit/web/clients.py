"""The web tests' HTTP clients: httpx's, with one timeout long enough for a loaded machine.

httpx waits 5 s by default; a dashboard in the test's process answered past that at a load of
30 (session 46), failing a test about something else. A hung dashboard still fails, later.
"""

from __future__ import annotations

from functools import partial

import httpx

__all__ = ["WEB_TIMEOUT_S", "Client", "get", "post"]

#: How long a web test's request waits for the dashboard (connect, each read and write).
WEB_TIMEOUT_S = 60.0

get = partial(httpx.get, timeout=WEB_TIMEOUT_S)
post = partial(httpx.post, timeout=WEB_TIMEOUT_S)
Client = partial(httpx.Client, timeout=WEB_TIMEOUT_S)
