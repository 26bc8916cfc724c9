"""A row the store cannot read (changed outside preform-pipeline) is a StoreError naming it.

SQLite checks no column's values: a state this code does not know, a time or JSON that does
not parse, written by hand or by another program, ended every command that read the row in
a crash (``jobs list``: exit 70, "ValueError: 'nonsense' is not a valid JobState"; session
45's fuzzer). The row readers shared by both stores (sqlcore) now say which row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobState, SqliteJobStore

S = JobState


def _store_with_a_sent_print(path: Path) -> None:
    with SqliteJobStore(path) as store:
        job = store.create_job(recipe="dental", source_path="/hot/processing/a.stl",
                               state=S.PROCESSING)
        build = store.create_build(recipe="dental", job_ids=[job.id])
        for state in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
            store.transition_build(build.id, state, "sent", printer="Form4-A")


def _changed_outside(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(sql)
        conn.commit()


class TestARowChangedOutside:
    """Reading it says which row and why, and that the store was changed or is damaged."""

    @pytest.mark.parametrize(("sql", "read", "said"), [
        ("UPDATE jobs SET state = 'nonsense'", lambda s: s.list_jobs(),
         "job 1 in the job store cannot be read: its state: 'nonsense' is not a valid JobState"),
        ("UPDATE jobs SET fields = '{'", lambda s: s.get_job(1),
         "job 1 in the job store cannot be read: its fields: Expecting property name enclosed in "
         "double quotes: line 1 column 2 (char 1)"),
        ("UPDATE builds SET updated_at = 'x'", lambda s: s.pending_prints(),
         "build 1 in the job store cannot be read: its updated_at: Invalid isoformat string: 'x'"),
        ("UPDATE transitions SET to_state = 'zz' WHERE id = 1", lambda s: s.history(1),
         "transition 1 in the job store cannot be read: its to_state: 'zz' is not a valid "
         "JobState"),
        # Read as text, the bytes failed where the recipe was first shown (AttributeError).
        ("UPDATE jobs SET recipe = x'ff00'", lambda s: s.list_jobs(),
         "job 1 in the job store cannot be read: its recipe holds bytes, not text"),
    ], ids=["job-state", "job-fields", "build-time", "transition-state", "bytes-as-text"])
    def test_it_is_a_store_error_naming_the_row(
        self, tmp_path: Path, sql: str, read: Callable[[SqliteJobStore], object], said: str
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        _store_with_a_sent_print(path)
        _changed_outside(path, sql)
        with closing(sqlite3.connect(path)) as conn:
            before = conn.execute("SELECT * FROM jobs").fetchall()
        with SqliteJobStore(path) as store, pytest.raises(StoreError) as caught:
            read(store)
        assert caught.value.message == said
        assert caught.value.hint == (
            "changed outside preform-pipeline, by a newer one (run that) or damaged; the row "
            "is kept as it was: set that column right by hand (docs/jobs.md)")
        # The row is there to mend as the hint says, as it was: no reader took it away.
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT * FROM jobs").fetchall() == before

    def test_the_column_named_is_the_one_whose_value_failed(self, tmp_path: Path) -> None:
        # Read after a score of good columns: the person mending the row must be sent to
        # this one (the review of session 45: the message named no column).
        path = tmp_path / "jobs.sqlite3"
        _store_with_a_sent_print(path)
        _changed_outside(path, "UPDATE jobs SET verified_at = 'soon'")
        with SqliteJobStore(path) as store, pytest.raises(StoreError) as caught:
            store.get_job(1)
        assert caught.value.message == ("job 1 in the job store cannot be read: its "
                                        "verified_at: Invalid isoformat string: 'soon'")
