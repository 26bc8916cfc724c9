"""A daemon that loses every round of taking the lock over gives up with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.store import daemon_lock
from preform_pipeline.store.daemon_lock import DaemonLock, lock_path_of


class TestEveryRoundLost:
    """After its last round the daemon says what happened, how often, and what to do."""

    def test_the_error_names_the_lock_the_rounds_and_the_way_out(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Each round removes one dead holder and tries again; losing five rounds in a row takes
        # daemons starting together. With one round, removing a dead holder is the last thing
        # the round does, so the daemon stops where it would after losing every round.
        monkeypatch.setattr(daemon_lock, "MAX_TAKEOVER_ATTEMPTS", 1)
        store = tmp_path / "jobs.sqlite3"
        me = ProcessIdentity.current()
        dead = ProcessIdentity(pid=me.pid, create_time=me.create_time - 3600, host=me.host,
                               instance=me.instance)
        lock = lock_path_of(store)
        lock.write_text(json.dumps({**dead.to_json(), "acquired_at": "2024-05-01T12:00:00"}),
                        encoding="utf-8")
        with pytest.raises(StoreError) as caught:
            DaemonLock(store).acquire()
        assert caught.value.message == (
            f"{lock}: could not take the daemon lock after 1 attempts: other daemons are "
            "starting on this store at the same time")
        assert caught.value.hint == "start one daemon per store"
        assert not lock.exists()
