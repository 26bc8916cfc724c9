"""Both stores (SQLite, PostgreSQL): a notice is said once per thing it is about, across opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobStore, SqliteJobStore


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
