"""A store that has forgotten an output folder's prints: which earlier reports prove it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preform_pipeline.commands._store_history import (
    EarlierPrints,
    earlier_prints,
    forgotten_prints_error,
)
from preform_pipeline.store import SqliteJobStore


def _report(root: Path, run_id: str, *, simulated: bool, dry_run: bool = False,
            recipe: str = "nightly", model: Path | None = None) -> Path:
    """An earlier run's report of one build of ``model`` (made: ``inbox/<run id>.stl``)."""
    if model is None:
        model = root / "inbox" / f"{run_id}.stl"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(b"solid x\nendsolid x\n")
    path = root / "out" / "reports" / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "run_id": run_id, "recipe": recipe, "simulated": simulated, "dry_run": dry_run,
        "builds": [{"job_key": f"PP-{run_id[-6:].upper()}", "source_files": [str(model)]}],
    }), encoding="utf-8")
    return model


def _found(root: Path, store: SqliteJobStore, *, simulated: bool = False,
           models: tuple[Path, ...] = ()) -> EarlierPrints | None:
    return earlier_prints(root / "out", store, recipe="nightly", simulated=simulated,
                          models=models or (root / "inbox",))


class TestEarlierPrints:
    """Only a report of the same recipe and kind, not a dry run, proves earlier prints."""

    def test_the_newest_report_of_real_prints_is_found(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        _report(tmp_path, "20261202-020000-bbbbbb", simulated=False)
        found = _found(tmp_path, store)
        assert found is not None
        assert (found.run_id, found.job_keys) == ("20261202-020000-bbbbbb", ("PP-BBBBBB",))

    def test_a_rehearsal_does_not_hold_up_the_first_real_run(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=True)
        assert _found(tmp_path, store) is None

    def test_a_dry_run_or_another_recipe_proves_nothing(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False, dry_run=True)
        _report(tmp_path, "20261202-020000-bbbbbb", simulated=False, recipe="other")
        assert _found(tmp_path, store) is None


class TestModelsNoLongerThere:
    """A report proves forgotten prints only of models still in this run's folders."""

    def test_a_model_moved_out_of_the_folders_holds_up_no_run(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        # Review of session 42: the refusal says to move the printed models out and run
        # once with --reprint; that run found nothing to do and recorded no job, so every
        # later run (a new model in the inbox) was refused again by the same old report.
        printed = _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        assert _found(tmp_path, store) is not None
        printed.rename(tmp_path / printed.name)
        assert _found(tmp_path, store) is None

    def test_a_report_of_models_from_another_folder_proves_nothing(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        # A hot folder's batches (its models in processing/) or another inbox's runs write
        # their reports into the same output folder: this run's models were never printed.
        elsewhere = tmp_path / "hot" / "processing" / "crown.stl"
        elsewhere.parent.mkdir(parents=True)
        elsewhere.write_bytes(b"solid x\nendsolid x\n")
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False, model=elsewhere)
        (tmp_path / "inbox").mkdir()
        assert _found(tmp_path, store) is None
        found = _found(tmp_path, store, models=(tmp_path / "inbox", elsewhere))
        assert found is not None and found.job_keys == ("PP-AAAAAA",)


class TestTheRefusal:
    """What a refused run says names the store as every other line does."""

    def test_a_store_url_is_named_without_its_password(self, tmp_path: Path) -> None:
        # Review of session 42: the refusal printed the store's URL as given, password and
        # all, on stderr, which cron mails (a typed password is only warned of).
        found = EarlierPrints(tmp_path / "reports" / "r.json", "r", ("PP-AAAAAA",))
        said = str(forgotten_prints_error(found, "postgresql://lab:s3cret@db/pp", tmp_path))
        assert "s3cret" not in said
        assert "the job store postgresql://lab:***@db/pp holds no job" in said


def _write(root: Path, name: str, text: str) -> Path:
    path = root / "out" / "reports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class TestWhichStoreHasForgotten:
    """Session 42's mutation run: only a job of this recipe says the store is the one."""

    def test_a_job_of_another_recipe_does_not_make_it_the_store_of_these_prints(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        store.create_job(recipe="other", source_path=tmp_path / "x.stl")
        assert _found(tmp_path, store) is not None

    def test_a_job_of_this_recipe_makes_it_the_store_of_these_prints(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        store.create_job(recipe="nightly", source_path=tmp_path / "x.stl")
        assert _found(tmp_path, store) is None


class TestANewerReportThatProvesNothing:
    """A newer report that proves nothing does not hide an older one that does."""

    @pytest.mark.parametrize("newer", [
        '{"run_id": "cut sh',  # damaged
        json.dumps({"run_id": "b", "recipe": "other", "simulated": False, "dry_run": False,
                    "builds": [{"job_key": "PP-B", "source_files": []}]}),
        json.dumps({"run_id": "b", "recipe": "nightly", "simulated": False,
                    "dry_run": False, "builds": None}),
    ], ids=["damaged", "another recipe", "no list of builds"])
    def test_it_is_passed_over(
        self, newer: str, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        _write(tmp_path, "20261202-020000-bbbbbb.json", newer)
        found = _found(tmp_path, store)
        assert found is not None and found.run_id == "20261201-020000-aaaaaa"

    def test_a_build_that_names_no_source_files_proves_nothing(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        (tmp_path / "inbox").mkdir()
        _write(tmp_path, "20261201-020000-aaaaaa.json", json.dumps({
            "run_id": "20261201-020000-aaaaaa", "recipe": "nightly", "simulated": False,
            "dry_run": False, "builds": [{"job_key": "PP-AAAAAA"}]}))
        assert _found(tmp_path, store) is None


class TestWhatIsFound:
    def test_a_report_kept_under_another_name_still_names_its_run(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        reports = tmp_path / "out" / "reports"
        kept = (reports / "20261201-020000-aaaaaa.json").rename(reports / "kept.json")
        assert (found := _found(tmp_path, store)) is not None
        assert (found.report, found.run_id) == (kept, "20261201-020000-aaaaaa")

    def test_a_report_without_a_run_id_is_named_by_its_file(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        report = tmp_path / "out" / "reports" / "20261201-020000-aaaaaa.json"
        data = json.loads(report.read_text(encoding="utf-8"))
        del data["run_id"]
        report.write_text(json.dumps(data), encoding="utf-8")
        found = _found(tmp_path, store)
        assert found is not None and found.run_id == "20261201-020000-aaaaaa"


class TestTheRefusalInFull:
    """The refusal's words, whole: which run, which prints, and the three ways on."""

    def test_three_prints_are_named_each(self, tmp_path: Path) -> None:
        found = EarlierPrints(tmp_path / "reports" / "r1.json", "r1",
                              ("PP-A", "PP-B", "PP-C"))
        error = forgotten_prints_error(found, tmp_path / "jobs.sqlite3", tmp_path)
        assert f"printed into {tmp_path} before (PP-A, PP-B, PP-C; r1.json): " in str(error)

    def test_more_than_three_are_cut_after_the_third(self, tmp_path: Path) -> None:
        found = EarlierPrints(tmp_path / "reports" / "r1.json", "r1",
                              ("PP-A", "PP-B", "PP-C", "PP-D"))
        error = forgotten_prints_error(found, tmp_path / "jobs.sqlite3", tmp_path)
        assert error.message.endswith(
            f"but run r1 printed into {tmp_path} before (PP-A, PP-B, PP-C, ...; r1.json): "
            "the store that recorded those prints is gone or another one is named, so the "
            "models of those prints still in the folders would be printed again")
        assert error.hint == (
            "name the store that recorded them (--store, or store.path or store.url in the "
            "settings); or move the models already printed out of the folders; or, to print "
            "them again on purpose, run once with --reprint")
