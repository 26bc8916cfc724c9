"""What a ``run`` did that its record (run report and log) is kept for: the one rule.

**A run that did nothing leaves nothing.** A run from cron every few minutes over an inbox it
does not empty finds the same printed models each time; a report and a log of each such look
were ~860 files a day below the output folder, each saying "nothing happened". So a run
keeps its reports (``reports/<run id>.json`` and ``.csv``) and its own log
(``logs/<run id>.jsonl``, with the folders it made for it) only when it did one of the
:class:`Deed` s below; otherwise it takes them back, however it ended: done, refused (its
``error:`` line says why on stderr), or interrupted. A log the user asked for (``--log-file``,
the settings' ``logging.file``) is always written: that is how to keep a line of every look.

What is *not* a deed (each has its record elsewhere or said on the console): models skipped
as already printed or in flight (the store holds their jobs; ``-v`` lists them), files passed
over as rejected by an earlier run and unchanged ("said once"), files not taken yet (still
being written), a build left waiting for a printer that still waits (the store holds it), the
job store opened, made or migrated, and a refusal before any work (said on stderr).

A run counts a deed when it starts doing it (the builds before the first server starts), so
a run stopped midway keeps the record of what it began.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["Deed", "RunDeeds"]


class Deed(enum.Enum):
    """Something a run did that is worth its report and log."""

    #: Builds planned to run: prepared (a dry run's too), printed, or reprinted (``--reprint``).
    PREPARED = "prepared"
    #: Files rejected that no earlier run said (a file said once before is passed over).
    REJECTED = "rejected"
    #: Work an earlier run that died left claimed: released, or its interrupted send settled.
    RELEASED = "released"
    #: Builds an earlier run left waiting for a printer that this run sent, or failed to send.
    SENT = "sent"
    #: Files removed below the output folder: by ``run.retention_days``, or the hidden
    #: temporaries a killed run left (the log names each).
    REMOVED = "removed"


class RunDeeds:
    """What one run has done so far, filled in as it goes and read when it ends (however it
    ends: an exception midway reads what was begun)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[Deed, int] = {}

    def add(self, deed: Deed, count: int = 1) -> None:
        """``count`` more of ``deed`` (zero adds nothing)."""
        if count < 0:
            raise ValueError(f"a run cannot do {count} {deed.value}")
        self._counts[deed] = self._counts.get(deed, 0) + count

    def settle(self, deed: Deed, count: int) -> None:
        """``deed`` counted as ``count`` now that it is known: a send pass counted as begun
        before it ran, then as the builds it sent or failed to send."""
        self._counts[deed] = 0
        self.add(deed, count)

    @property
    def nothing(self) -> bool:
        """Whether the run did nothing worth a record: then it leaves none."""
        return not any(self._counts.values())

    def counts(self) -> Mapping[Deed, int]:
        """Each deed done, with how many (none that were zero)."""
        return {deed: n for deed, n in self._counts.items() if n}
