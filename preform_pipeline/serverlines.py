"""What PreFormServer prints on its console that a program starting it reads.

The pool (``servers/process.py``) waits for the ready line and tells a taken port by the bind
failure's words; the simulator, a model of that server, prints the same lines. Both read
them here, in the base layer both may import, so the words are written once (session 41:
each had its own copy, and a change to one would have left the pool waiting for a line the
simulator no longer printed).
"""

from __future__ import annotations

from typing import Final

__all__ = ["PORT_IN_USE_TEXT", "READY_LINE"]

#: The line PreFormServer prints once it takes requests.
READY_LINE: Final = "READY FOR INPUT"
#: Lower-case text of the bind failure (Qt says "The bound address is already in use").
PORT_IN_USE_TEXT: Final = "address is already in use"
