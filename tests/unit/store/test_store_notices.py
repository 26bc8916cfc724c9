"""Both stores (SQLite, PostgreSQL): a notice is said once per thing it is about, across opens."""

from __future__ import annotations

from pathlib import Path

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
