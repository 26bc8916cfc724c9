"""Both stores (SQLite, PostgreSQL): a notice is said once per thing it is about, across opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobStore, SqliteJobStore
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD


class TestANoticeIsSaidOnce:
    """``note_notice`` answers True the first time a notice is about something, then False."""

    def test_the_same_notice_about_the_same_thing_is_said_once(self, store: JobStore) -> None:
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is True
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is False
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is False

    def test_it_is_said_again_once_what_it_is_about_changed(self, store: JobStore) -> None:
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is True
        assert store.note_notice("drop_name_too_long /in/a.stl", "130 1800") is True
        assert store.note_notice("drop_name_too_long /in/a.stl", "130 1800") is False
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is True

    def test_each_notice_is_its_own(self, store: JobStore) -> None:
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is True
        assert store.note_notice("drop_name_too_long /in/b.stl", "120 1700") is True
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is False


class TestWhatANoticeWasSaidAbout:
    """``notice_about`` reads what a notice was last said about, and writes nothing."""

    def test_it_reads_the_last_thing_said_and_records_nothing(self, store: JobStore) -> None:
        assert store.notice_about("rejected [r] /in/a.stl") is None
        assert store.notice_keys("rejected ") == ()  # a read: nothing recorded by it
        store.note_notice("rejected [r] /in/a.stl", "120 1700 too big")
        store.note_notice("rejected [r] /in/a.stl", "130 1800 too big")
        assert store.notice_about("rejected [r] /in/a.stl") == "130 1800 too big"
        assert store.notice_about("rejected [r] /in/b.stl") is None
        store.forget_notices(["rejected [r] /in/a.stl"])
        assert store.notice_about("rejected [r] /in/a.stl") is None


class TestANoticeOutlivesTheProcess:
    """What one opening of a store said, the next opening (cron's next run) remembers."""

    def test_a_second_opening_does_not_say_it_again(self, store_path: Path) -> None:
        with SqliteJobStore(store_path) as first:
            assert first.note_notice("k", "1") is True
        with SqliteJobStore(store_path) as second:
            assert second.note_notice("k", "1") is False
            assert second.note_notice("k", "2") is True


class TestALockedStore:
    """A store another writer holds says what it was doing, and records nothing."""

    def test_the_error_names_the_notice_being_recorded(self, store_path: Path) -> None:
        with SqliteJobStore(store_path, busy_timeout_s=0.1) as store:
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(StoreError) as raised:
                    store.note_notice("k", "1")
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert raised.value.message == (
                f"{store_path}: the job store stayed locked for more than 0.1 s while "
                "recording a notice")
            assert store.note_notice("k", "1") is True  # the refused one left no record


class TestANoticeIsForgotten:
    """A notice removed (what it was about is gone) is said again if that comes back."""

    def test_the_keys_under_a_prefix_are_listed(self, store: JobStore) -> None:
        for key in ("drop_name_too_long /in/a.stl", "drop_name_too_long /in/b_%.stl",
                    "drop_name_too_long /inx/c.stl", "other /in/a.stl"):
            store.note_notice(key, "1")

        assert store.notice_keys("drop_name_too_long /in/") == (
            "drop_name_too_long /in/a.stl", "drop_name_too_long /in/b_%.stl")
        # A path's "%" and "_" are themselves, not wildcards.
        assert store.notice_keys("drop_name_too_long /in/b_%") == (
            "drop_name_too_long /in/b_%.stl",)
        assert store.notice_keys("drop_name_too_long /in/b%") == ()
        assert store.notice_keys("nothing") == ()

    def test_a_forgotten_notice_is_said_again_and_the_others_are_not(
        self, store: JobStore
    ) -> None:
        store.note_notice("drop_name_too_long /in/a.stl", "120 1700")
        store.note_notice("drop_name_too_long /in/b.stl", "120 1700")

        assert store.forget_notices(["drop_name_too_long /in/a.stl", "never said"]) == 1

        assert store.notice_keys("drop_name_too_long ") == ("drop_name_too_long /in/b.stl",)
        assert store.note_notice("drop_name_too_long /in/a.stl", "120 1700") is True
        assert store.note_notice("drop_name_too_long /in/b.stl", "120 1700") is False

    def test_forgetting_nothing_is_nothing(self, store: JobStore) -> None:
        store.note_notice("k", "1")

        assert store.forget_notices([]) == 0
        assert store.notice_keys("") == ("k",)


class TestForgettingInALockedOrBrokenStore:
    """Reading notices does not wait for another writer; forgetting them does, and says so;
    a store that fails says what it was doing."""

    def test_the_keys_are_read_while_another_writer_holds_the_store(
        self, store_path: Path
    ) -> None:
        with SqliteJobStore(store_path, busy_timeout_s=0.1) as store:
            store.note_notice("k", "1")
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                assert store.notice_keys("") == ("k",)
                with pytest.raises(StoreError) as raised:
                    store.forget_notices(["k"])
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert raised.value.message == (
                f"{store_path}: the job store stayed locked for more than 0.1 s while "
                "forgetting notices")
            assert store.notice_keys("") == ("k",)  # the refused one removed nothing

    def test_a_failing_store_names_what_it_was_doing(self, store_path: Path) -> None:
        with SqliteJobStore(store_path) as store:
            other = sqlite3.connect(store_path, isolation_level=None)
            other.execute("DROP TABLE notices")  # any failure of the table's reads and writes
            other.close()
            with pytest.raises(StoreError) as reading:
                store.notice_keys("")
            with pytest.raises(StoreError) as forgetting:
                store.forget_notices(["k"])
            with pytest.raises(StoreError) as keeping:
                store.keep_notices(["k"])
            with pytest.raises(StoreError) as expiring:
                store.forget_old_notices("", older_than_s=1.0)
        assert reading.value.message == (
            f"{store_path}: the job store failed while reading the notices: "
            "no such table: notices")
        assert forgetting.value.message == (
            f"{store_path}: the job store failed while forgetting notices: "
            "no such table: notices")
        assert keeping.value.message == (
            f"{store_path}: the job store failed while keeping notices: "
            "no such table: notices")
        assert expiring.value.message == (
            f"{store_path}: the job store failed while forgetting old notices: "
            "no such table: notices")


DAY_S = 86_400.0
MONTH_S = 30 * DAY_S


def another_opening(store: JobStore, store_path: Path, request: pytest.FixtureRequest,
                    clock: ManualClock) -> JobStore:
    """A second opening of ``store``'s database, as another node (or cron run) has it."""
    if isinstance(store, SqliteJobStore):
        return SqliteJobStore(store_path, clock=clock)
    return PostgresJobStore(request.getfixturevalue("pg_url"), clock=clock, password=PG_PASSWORD)


class TestOldNoticesAreForgotten:
    """A notice neither said nor kept for the period is forgotten; one kept stays."""

    def test_a_notice_not_kept_for_the_period_is_forgotten_and_said_again(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        store.note_notice("drop_name_too_long /removed/a.stl", "120 1700")
        store.note_notice("drop_name_too_long /in/b.stl", "120 1700")
        clock.advance(20 * DAY_S)
        assert store.keep_notices(["drop_name_too_long /in/b.stl", "never said"]) == 1
        clock.advance(15 * DAY_S)

        assert store.forget_old_notices("drop_name_too_long ", older_than_s=MONTH_S) == (
            "drop_name_too_long /removed/a.stl",)

        assert store.notice_keys("") == ("drop_name_too_long /in/b.stl",)
        assert store.note_notice("drop_name_too_long /removed/a.stl", "120 1700") is True
        assert store.note_notice("drop_name_too_long /in/b.stl", "120 1700") is False

    def test_a_notice_exactly_the_period_old_stays(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        store.note_notice("drop_name_too_long /in/a.stl", "1")
        clock.advance(MONTH_S)
        assert store.forget_old_notices("drop_name_too_long ", older_than_s=MONTH_S) == ()
        clock.advance(0.001)
        assert store.forget_old_notices("drop_name_too_long ", older_than_s=MONTH_S) == (
            "drop_name_too_long /in/a.stl",)

    def test_only_the_prefixs_notices_are_forgotten(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        for key in ("drop_name_too_long /in/b_%.stl", "drop_name_too_long_x /in/a.stl",
                    "other /in/a.stl"):
            store.note_notice(key, "1")
        clock.advance(2 * MONTH_S)

        # A key's "%" and "_" are themselves, not wildcards, in the prefix too.
        assert store.forget_old_notices("drop_name_too_long /in/b%", older_than_s=MONTH_S) == ()
        assert store.forget_old_notices("drop_name_too_long ", older_than_s=MONTH_S) == (
            "drop_name_too_long /in/b_%.stl",)
        assert store.notice_keys("") == ("drop_name_too_long_x /in/a.stl", "other /in/a.stl")

    def test_keeping_nothing_is_nothing(self, store: JobStore) -> None:
        assert store.keep_notices([]) == 0


class TestAnotherNodesLiveNotices:
    """On one database, a node forgets what nobody kept, never what another node keeps."""

    def test_the_other_nodes_kept_notice_stays_and_is_not_said_again(
        self, store: JobStore, store_path: Path, request: pytest.FixtureRequest,
        clock: ManualClock,
    ) -> None:
        other = another_opening(store, store_path, request, clock)
        try:
            # Node B mounts the shared inbox at /srv/inbox; node A's inbox was removed.
            assert other.note_notice("drop_name_too_long /srv/inbox/b.stl", "1") is True
            assert store.note_notice("drop_name_too_long /mnt/old/a.stl", "1") is True
            for _ in range(35):  # node B's scans find its file every day
                clock.advance(DAY_S)
                other.keep_notices(other.notice_keys("drop_name_too_long /srv/inbox/"))

            assert store.forget_old_notices("drop_name_too_long ", older_than_s=MONTH_S) == (
                "drop_name_too_long /mnt/old/a.stl",)

            assert other.note_notice("drop_name_too_long /srv/inbox/b.stl", "1") is False
        finally:
            other.close()
