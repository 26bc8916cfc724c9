"""``jobs`` on a store of its own: every command a hint names reaches the store just used.

``preform-pipeline jobs`` alone opens the default store, so a hint that names it after
``jobs --store PATH`` (or ``--settings FILE`` with a ``store.path``) sends the user to
another store: "no job store here", or the wrong jobs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.store import Job, JobState, SqliteJobStore

S = JobState


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["jobs", *argv], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    # A folder with a space: the command must quote it to work as printed.
    with SqliteJobStore(tmp_path / "lab store" / "jobs.sqlite3") as opened:
        yield opened


def sent_job(store: SqliteJobStore, *more: JobState) -> Job:
    job = store.create_job(recipe="dental", source_path="/hot/processing/a.stl",
                           state=S.PROCESSING)
    build = store.create_build(recipe="dental", job_ids=[job.id])
    for state in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, *more):
        store.transition_build(build.id, state, f"to {state.value}", printer="Form4-A")
    return store.get_job(job.id)


class TestHintsNameTheStore:
    """After ``--store PATH`` or ``--settings FILE``, hints name the command that reaches it."""

    def test_an_unknown_job_id_points_at_this_stores_list(self, store: SqliteJobStore) -> None:
        code, _, err = invoke("--store", str(store.path), "show", "99")
        assert code == 1
        assert err == (f'error: {store.path}: no job 99 (`preform-pipeline jobs --store '
                       f'"{store.path}"` lists the jobs)\n')

    def test_an_unknown_key_points_at_this_stores_list(self, store: SqliteJobStore) -> None:
        code, _, err = invoke("show", "PP-AAAAAAAAAA", "--store", str(store.path))
        assert code == 1
        assert err == ('error: no job with key PP-AAAAAAAAAA (`preform-pipeline jobs --store '
                       f'"{store.path}"` lists the jobs)\n')

    def test_a_print_that_needs_no_settling_points_at_its_history_here(
        self, store: SqliteJobStore
    ) -> None:
        job = sent_job(store, S.PRINT_SENT)
        build = store.get_build(job.build_id or 0)
        code, _, err = invoke("--store", str(store.path), "resolve", build.job_key, "--printed")
        assert code == 1
        assert err.endswith(f'(see `preform-pipeline jobs --store "{store.path}" show '
                            f'{build.job_key}`)\n')

    def test_an_unverified_retry_names_the_cancel_that_reaches_the_settings_store(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        job = sent_job(store, S.UNVERIFIED)
        settings = tmp_path / "settings.yaml"
        settings.write_text(f"store:\n  path: {store.path}\n", encoding="utf-8")
        code, _, err = invoke("--settings", str(settings), "retry", str(job.id))
        assert code == 0
        assert (f'cancel this retry: preform-pipeline jobs --store "{store.path}" cancel '
                f"{job.id}\n") in err

    def test_the_default_store_is_named_by_the_bare_command(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.delenv("PREFORM_PIPELINE_SETTINGS", raising=False)
        monkeypatch.delenv("PREFORM_PIPELINE_STORE_PATH", raising=False)
        with SqliteJobStore(tmp_path / "data" / "preform-pipeline" / "jobs.sqlite3"):
            pass
        code, _, err = invoke("show", "7")
        assert code == 1
        assert err.endswith(": no job 7 (`preform-pipeline jobs` lists the jobs)\n")


class TestTheHelp:
    """``jobs --help`` says the settings file may name a shared store too."""

    def test_settings_are_read_for_store_url_or_store_path(self) -> None:
        out = io.StringIO()
        assert run(["jobs", "--help"], out, io.StringIO()) == 0
        shown = " ".join(out.getvalue().split())
        assert "--settings FILE settings YAML file (for store.url or store.path)" in shown
