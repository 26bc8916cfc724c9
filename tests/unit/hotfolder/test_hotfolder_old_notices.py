"""The store's notices about names too long outlive neither their inbox nor their node.

A daemon keeps at each scan the notices whose file it finds in its inboxes, and forgets at
its first scan (then daily) those nobody kept for ``NOTICE_RETENTION_S``: an inbox removed
from the settings leaves no row for ever, while the names in an inbox still watched are said
once, however long they stay. The daemons run ``--once`` on a real SQLite store, on a
:class:`ManualClock` the test moves by days (the store's and the daemons' clock).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon_support import Script, make_daemon
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.daemon import NOTICE_RETENTION_S
from preform_pipeline.hotfolder.files import MAX_NAME_BYTES
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import SqliteJobStore

DAY_S = 86_400.0
LONG_NAME = "n" * (MAX_NAME_BYTES + 1) + ".stl"


def long_name_in_an_inbox(where: Path) -> Path:
    """A model whose name is a byte too long, in ``where/inbox``."""
    (where / "inbox").mkdir(parents=True)
    path = where / "inbox" / LONG_NAME
    path.write_bytes(tetra_stl_bytes(1))
    return path


class TestANoticeOfAnInboxRemovedFromTheSettings:
    """Its notice is forgotten once nobody kept it for the retention; the names of the inbox
    still watched are kept at each scan and said once."""

    def test_it_is_forgotten_after_the_retention_and_said_again_if_the_inbox_comes_back(
        self, tmp_path: Path
    ) -> None:
        clock = ManualClock()
        old, new = tmp_path / "old", tmp_path / "new"
        old_file, new_file = long_name_in_an_inbox(old), long_name_in_an_inbox(new)
        recipe = write_recipe(tmp_path, name="hot")

        with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:

            def once(where: Path) -> tuple[list[str], list[dict[str, Any]]]:
                """A daemon whose one inbox is ``where/inbox`` runs ``--once``: its lines and
                the notices it forgot by age."""
                daemon = make_daemon(where, store, Script(fleet_dir=where / "fleet"), recipe,
                                     clock=clock)
                lines: list[str] = []
                daemon.notice = lines.append
                with capture_logs() as logs:
                    assert daemon.run(once=True) == 0
                return lines, [e for e in logs if e["event"] == "notices_expired"]

            assert len(once(old)[0]) == 1  # said while its inbox was in the settings
            # From now on the settings name only the new inbox.
            (said,), _ = once(new)
            assert said.startswith(f"{new_file} stays in the inbox")
            clock.advance(NOTICE_RETENTION_S - DAY_S)
            assert once(new) == ([], [])  # a day short of the retention: nothing forgotten
            clock.advance(2 * DAY_S)

            lines, expired = once(new)

            assert lines == []  # the new inbox's name, kept at each scan, is not said again
            assert [(e["paths"], e["days"]) for e in expired] == [([str(old_file)], 30.0)]
            assert store.notice_keys("") == (f"drop_name_too_long {new_file}",)
            (again,), _ = once(old)  # the old inbox in the settings again: said once more
            assert again.startswith(f"{old_file} stays in the inbox")
