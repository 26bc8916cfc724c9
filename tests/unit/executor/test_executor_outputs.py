"""Output files claim a free name: an existing file is never overwritten."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from preform_pipeline.executor.outputs import (
    claim_output,
    companion_output,
    place_output,
    release_output,
)
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)


class TestClaimOutput:
    """Each claim gets its own file, numbered -2, -3... after the first."""

    def test_a_free_path_is_claimed_as_it_is(self, tmp_path: Path) -> None:
        target = tmp_path / "2026-01-02" / "PP-1.form"
        assert claim_output(target) == target and target.is_file()

    def test_a_taken_path_gets_the_next_free_suffix(self, tmp_path: Path) -> None:
        target = tmp_path / "b.form"
        target.write_bytes(b"yesterday's run")
        (tmp_path / "b-2.form").write_bytes(b"this morning's run")
        assert claim_output(target) == tmp_path / "b-3.form"
        assert target.read_bytes() == b"yesterday's run"

    def test_a_missing_folder_is_made_and_an_existing_one_reused(self, tmp_path: Path) -> None:
        first = claim_output(tmp_path / "a" / "b" / "x.form")
        second = claim_output(tmp_path / "a" / "b" / "x.form")
        assert (first.name, second.name) == ("x.form", "x-2.form")
        assert first.is_file() and second.is_file()

    def test_a_folder_name_taken_by_a_file_is_an_error_and_nothing_is_made(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "day").write_bytes(b"not a folder")
        with pytest.raises(NotADirectoryError, match="a file stands where a folder of the "
                           "path should be") as caught:
            claim_output(tmp_path / "day" / "x.form")
        assert (caught.value.errno, caught.value.filename) == (errno.ENOTDIR,
                                                                str(tmp_path / "day"))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["day"]

    def test_claims_racing_for_one_name_all_get_different_files(self, tmp_path: Path) -> None:
        target = tmp_path / "same.form"
        got: list[Path] = []
        lock = threading.Lock()

        def claim() -> None:
            path = claim_output(target)
            with lock:
                got.append(path)

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(got)) == 8

    def test_a_released_claim_that_was_never_written_is_removed(self, tmp_path: Path) -> None:
        path = claim_output(tmp_path / "x.form")
        release_output(path)
        assert not path.exists()
        written = claim_output(tmp_path / "y.form")
        written.write_bytes(b"data")
        release_output(written)
        assert written.read_bytes() == b"data"


class TestALongName:
    """A taken name with no room for ``-N`` within 255 bytes gets a free name all the same:
    its stem cut between letters, a hash of the whole stem, then ``-N`` and its extension."""

    @pytest.mark.parametrize("letter", ["b", "é"])
    def test_the_next_claims_fit_and_differ(self, tmp_path: Path, letter: str) -> None:
        stem = letter * (250 // len(letter.encode("utf-8")))  # the name: 255 bytes
        target = tmp_path / f"{stem}.form"
        assert claim_output(target) == target  # the first is the name itself
        second, third = claim_output(target), claim_output(target)
        assert [p.name[-7:] for p in (second, third)] == ["-2.form", "-3.form"]
        for claimed in (second, third):
            assert len(claimed.name.encode("utf-8")) <= 255 and claimed.is_file()
            kept, _, _ = claimed.name.partition("~")
            assert stem.startswith(kept) and len(kept) > 100
        assert sorted(tmp_path.iterdir()) == sorted([target, second, third])

    def test_two_long_names_alike_but_for_their_end_stay_apart(self, tmp_path: Path) -> None:
        first, other = tmp_path / ("b" * 249 + "1.form"), tmp_path / ("b" * 249 + "2.form")
        claimed = [claim_output(p) for p in (first, other, first, other)]
        assert claimed[:2] == [first, other]
        # Each is its own name's second: the cut names differ by the hash of the whole stem.
        assert [p.name[-7:] for p in claimed[2:]] == ["-2.form", "-2.form"]
        assert claimed[2] != claimed[3]


class TestSameDayRuns:
    """Two runs of one day with the shipped ``{date}/{build}.form`` template keep both files."""

    def test_the_second_run_writes_beside_the_first_and_reports_its_own_file(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        model = write_box(tmp_path / "models", "part", 20, 20, 10)
        recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - save_form\n")
        farm.add()
        pool = FakePool([s.url for s in farm.servers])
        first = run(plan_for(recipe, [model]), pool, tmp_path / "out").outcomes[0]
        second = run(plan_for(recipe, [model]), pool, tmp_path / "out").outcomes[0]
        [a] = [p for p in first.outputs if p.suffix == ".form"]
        [b] = [p for p in second.outputs if p.suffix == ".form"]
        assert b == a.with_name(f"{a.stem}-2.form")
        assert a.stat().st_size > 0 and b.stat().st_size > 0


class TestACompanionFile:
    """A build's report takes the suffix its ``.form`` was given, so the two pair by name."""

    def test_it_takes_the_suffix_of_the_file_it_goes_with(self, tmp_path: Path) -> None:
        day = tmp_path / "2026-12-07"
        assert companion_output(day / "e2e-001.json", day / "e2e-001-6.form") == (
            day / "e2e-001-6.json")

    def test_it_keeps_its_name_beside_an_unsuffixed_file(self, tmp_path: Path) -> None:
        assert companion_output(tmp_path / "e2e-001.json", tmp_path / "e2e-001.form") == (
            tmp_path / "e2e-001.json")

    def test_it_keeps_its_name_when_kept_elsewhere_or_named_otherwise(
        self, tmp_path: Path
    ) -> None:
        report = tmp_path / "reports" / "e2e-001.json"
        assert companion_output(report, tmp_path / "forms" / "e2e-001-6.form") == report
        # A build whose own name ends in a number is not taken for a suffixed one.
        assert companion_output(tmp_path / "lot-7.json", tmp_path / "lot-7.form") == (
            tmp_path / "lot-7.json")

    def test_a_long_cut_name_is_matched_as_it_was_made(self, tmp_path: Path) -> None:
        stem = "b" * 250
        form = tmp_path / f"{stem}.form"
        claim_output(form)
        second = claim_output(form)
        assert "~" in second.name  # cut, with a hash of the whole stem
        paired = companion_output(tmp_path / f"{stem}.json", second)
        assert paired.suffix == ".json" and paired.name[:-5] == second.name[:-5]

    def test_a_form_never_takes_the_name_of_another_builds_report(
        self, tmp_path: Path
    ) -> None:
        # Review of session 42: an earlier run's build that failed (no .form) left its report
        # at e2e-001.json; the next run's .form took e2e-001.form beside it and its own
        # report went to e2e-001-2.json, so the dispatcher and the dashboard, reading the
        # report beside the .form, found the failed build's and not this one's.
        (tmp_path / "e2e-001.json").write_text("{}\n", encoding="utf-8")
        saved = tmp_path / "save" / "e2e-001.form"
        saved.parent.mkdir()
        saved.write_bytes(b"form")
        placed = place_output(saved, tmp_path / "e2e-001.form")
        assert placed == tmp_path / "e2e-001-2.form"
        assert companion_output(tmp_path / "e2e-001.json", placed) == tmp_path / "e2e-001-2.json"
        assert not (tmp_path / "e2e-001.form").exists()

    @pytest.mark.parametrize("suffix", [".txt", ".JSON", ""])
    def test_nor_the_name_of_a_report_of_another_suffix(
        self, tmp_path: Path, suffix: str
    ) -> None:
        # The recipe's outputs.report may be {build}.txt, .JSON or have no suffix: the
        # failed build's report at e2e-001<suffix> is as much another build's.
        report = tmp_path / f"e2e-001{suffix}"
        report.write_text("{}\n", encoding="utf-8")
        placed = place_output(_saved(tmp_path), tmp_path / "e2e-001.form", fellows=(report,))
        assert placed == tmp_path / "e2e-001-2.form"
        assert companion_output(report, placed) == tmp_path / f"e2e-001-2{suffix}"

    def test_a_report_kept_elsewhere_or_named_otherwise_leaves_the_name_free(
        self, tmp_path: Path
    ) -> None:
        for report in (tmp_path / "a" / "reports" / "e2e-001.txt",
                       tmp_path / "b" / "e2e-001-summary.txt"):
            report.parent.mkdir(parents=True)
            report.write_text("{}\n", encoding="utf-8")
            form = tmp_path / report.relative_to(tmp_path).parts[0] / "e2e-001.form"
            assert place_output(_saved(tmp_path), form, fellows=(report,)) == form


class TestABuildsFellows:
    """A build's ``.form``, screenshot and report rendered beside one another take one
    ``-N``: a name at which a fellow's name is another build's file is not free, and the
    build's own files placed already do not count."""

    def test_a_form_is_kept_off_a_name_whose_screenshot_another_build_left(
        self, tmp_path: Path
    ) -> None:
        # An earlier build was killed between its screenshot and its save: only its .png.
        (tmp_path / "e2e-001.png").write_bytes(b"png")
        placed = place_output(_saved(tmp_path), tmp_path / "e2e-001.form",
                              fellows=(tmp_path / "e2e-001.png",))
        assert placed == tmp_path / "e2e-001-2.form"

    def test_the_builds_own_screenshot_leaves_its_name_to_the_form(
        self, tmp_path: Path
    ) -> None:
        screenshot = tmp_path / "e2e-001.png"
        screenshot.write_bytes(b"png")
        placed = place_output(_saved(tmp_path), tmp_path / "e2e-001.form",
                              fellows=(screenshot,), ours=(screenshot,))
        assert placed == tmp_path / "e2e-001.form"


def _saved(tmp_path: Path) -> Path:
    """A finished .form in a save folder of its own, as a server's save leaves it."""
    saved = tmp_path / "save" / "e2e-001.form"
    saved.parent.mkdir(exist_ok=True)
    saved.write_bytes(b"form")
    return saved
