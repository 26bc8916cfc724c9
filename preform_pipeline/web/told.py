"""What an action did, said once on the page the browser is sent back to (POST/redirect/GET).

Every action of a browser session answers with a 303 to the page its button was on; what it
did, or why it was refused, is kept here in memory and named in that page's address by a
short random token (``done=…``), never by the text itself: a link cannot make the dashboard
say anything it did not. A refusal's page stayed at the action's address, so a reload offered
to post the form again; and the line went to whichever tab of the session loaded a page first
when it was kept per session without a token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["Said", "Told"]

_TOKEN_BYTES: Final = 8


@dataclass(frozen=True)
class Said:
    """The line an action leaves for its page: what was done, or why it was not."""

    text: str
    #: What helps, for a refusal (a PipelineError's hint).
    hint: str | None = None
    refused: bool = False


class Told:
    """The one line waiting per session: session id → (its page's token, the line). A newer
    action's line replaces an older one's, which is then never shown as this one's outcome."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[str, Said]] = {}

    def keep(self, session_id: str, said: Said) -> str:
        """Keep ``said`` for the session's next page naming the token returned."""
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        self._waiting[session_id] = (token, said)
        return token

    def take(self, session_id: str, token: str) -> Said | None:
        """The line kept for this token, once; None for any other token (another tab's page,
        a reload, a bookmark)."""
        waiting = self._waiting.get(session_id)
        # Not a secret (the session cookie is): ``compare_digest`` raises on non-ASCII text.
        if waiting is None or waiting[0] != token:
            return None
        del self._waiting[session_id]
        return waiting[1]

    def forget(self, session_id: str) -> None:
        self._waiting.pop(session_id, None)
