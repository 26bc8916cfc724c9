"""``preform-pipeline jobs``: list with filters, show a history, retry and cancel by the rules."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.cli import run
from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, Attachment, JobPlace
from preform_pipeline.settings import default_store_path
from preform_pipeline.settings.store import REHEARSAL_STORE_FILENAME
from preform_pipeline.store import Build, Job, JobState, SqliteJobStore
from tests.command_line import in_a_process

S = JobState
NOW = datetime.now(timezone.utc)


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["jobs", *argv], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


class Lab:
    """A store with jobs in telling states; ``clock`` is three days ago unless moved."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = ManualClock(wall=NOW - timedelta(days=3))
        self.store = SqliteJobStore(path, clock=self.clock)

    def job(self, name: str, *moves: tuple[JobState, str], recipe: str = "dental") -> Job:
        job = self.store.create_job(recipe=recipe, source_path=f"/hot/inbox/{name}",
                                    reason="seen in inbox")
        for state, reason in moves:
            job = self.store.transition(job.id, state, reason)
        return job

    def build(
        self, name: str, *states: JobState, printer: str | None = None
    ) -> tuple[Job, Build]:
        job = self.store.create_job(recipe="dental", source_path=f"/hot/processing/{name}",
                                    state=S.PROCESSING)
        build = self.store.create_build(recipe="dental", job_ids=[job.id])
        for state in states:
            build = self.store.transition_build(build.id, state, f"to {state}", printer=printer)
        return self.store.get_job(job.id), build


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path / "jobs.sqlite3")
    yield lab
    lab.store.close()


def _ids(out: str) -> list[int]:
    return [j["id"] for j in json.loads(out)["jobs"]]


class TestList:
    """Jobs are listed with their state, newest last, filtered as asked."""

    def test_every_job_is_listed_with_its_state_and_reason(self, lab: Lab) -> None:
        failed = lab.job("a.stl", (S.FAILED, "unreadable: truncated STL"))
        queued = lab.job("b.stl", (S.QUEUED, "size stable"))
        code, out, err = invoke("--store", str(lab.path))
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].split() == ["ID", "STATE", "CASE", "PRINTER", "RECIPE", "FILE",
                                    "UPDATED", "(UTC)", "KEY", "REASON"]
        assert lines[1].split()[:6] == [str(failed.id), "failed", "-", "-", "dental", "a.stl"]
        assert lines[1].endswith("unreadable: truncated STL")
        assert failed.job_key in lines[1]
        assert lines[2].split()[:2] == [str(queued.id), "queued"]
        assert lines[-1] == "2 jobs"

    def test_states_and_state_groups_filter_the_list(self, lab: Lab) -> None:
        failed = lab.job("a.stl", (S.FAILED, "bad"))
        queued = lab.job("b.stl", (S.QUEUED, "ok"))
        cancelled = lab.job("c.stl", (S.CANCELLED, "cancelled by user"))
        store = str(lab.path)
        assert _ids(invoke("--store", store, "--state", "failed", "--format", "json")[1]) == [
            failed.id
        ]
        assert _ids(invoke("--store", store, "--state", "failed,cancelled", "--format",
                           "json")[1]) == [failed.id, cancelled.id]
        assert _ids(invoke("--store", store, "--state", "active", "--format", "json")[1]) == [
            queued.id
        ]
        assert _ids(invoke("list", "--store", store, "--state", "retryable", "--state",
                           "QUEUED", "--format", "json")[1]) == [failed.id, queued.id,
                                                                 cancelled.id]

    def test_recipe_and_since_filter_the_list(self, lab: Lab) -> None:
        old = lab.job("old.stl")
        lab.clock.advance((timedelta(days=3) - timedelta(hours=2)).total_seconds())
        recent = lab.job("recent.stl")
        other = lab.job("other.stl", recipe="models")
        store = str(lab.path)
        assert _ids(invoke("--store", store, "--since", "1d", "--format", "json")[1]) == [
            recent.id, other.id
        ]
        assert _ids(invoke("--store", store, "--since", "4d", "--recipe", "dental", "--format",
                           "json")[1]) == [old.id, recent.id]
        day = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert _ids(invoke("--store", store, "--since", day, "--format", "json")[1]) == [
            recent.id, other.id
        ]

    def test_limit_keeps_the_most_recent_and_says_so(self, lab: Lab) -> None:
        jobs = [lab.job(f"{i}.stl") for i in range(4)]
        code, out, _ = invoke("--store", str(lab.path), "--limit", "2")
        assert code == 0
        assert [line.split()[0] for line in out.splitlines()[1:3]] == [
            str(jobs[2].id), str(jobs[3].id)
        ]
        assert out.splitlines()[-1] == "2 jobs (the 2 most recent; --limit 0 shows all)"
        assert len(_ids(invoke("--store", str(lab.path), "--limit", "0", "--format",
                               "json")[1])) == 4

    def test_a_store_that_does_not_exist_yet_lists_no_jobs(self, tmp_path: Path) -> None:
        path = tmp_path / "never.sqlite3"
        assert invoke("--store", str(path)) == (0, f"no jobs (no job store at {path} yet)\n", "")
        assert not path.exists()

    def test_with_only_the_rehearsal_store_jobs_and_verify_say_where_the_jobs_are(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Trial (session 33): after the README's first command, `jobs` and `verify` said
        # only "no job store" while the run had recorded its jobs in the rehearsal store.
        for name in ("PREFORM_PIPELINE_SETTINGS", "PREFORM_PIPELINE_STORE_PATH",
                     "PREFORM_PIPELINE_STORE_URL"):
            monkeypatch.delenv(name, raising=False)
        default = default_store_path()
        rehearsal = default.with_name(REHEARSAL_STORE_FILENAME)
        rehearsal.parent.mkdir(parents=True, exist_ok=True)
        SqliteJobStore(rehearsal).close()
        aside = (f"; simulated runs record their jobs in the rehearsal store beside it: "
                 f"`preform-pipeline jobs --store {rehearsal}` lists them")
        assert invoke() == (0, f"no jobs (no job store at {default} yet{aside})\n", "")
        stdout, stderr = io.StringIO(), io.StringIO()
        assert run(["verify"], stdout, stderr) == 0
        # Session 41: verify's hint named `jobs --store`, not the command that was run.
        assert stdout.getvalue() == (
            f"no job store at {default}: nothing to verify; simulated runs record their jobs "
            f"in the rehearsal store beside it: `preform-pipeline verify --store {rehearsal}` "
            "verifies them\n")
        assert not default.exists()

    def test_the_store_comes_from_the_environment_or_the_settings_file(
        self, lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        job = lab.job("a.stl")
        monkeypatch.delenv("PREFORM_PIPELINE_SETTINGS", raising=False)
        monkeypatch.setenv("PREFORM_PIPELINE_STORE_PATH", str(lab.path))
        assert _ids(invoke("--format", "json")[1]) == [job.id]
        monkeypatch.delenv("PREFORM_PIPELINE_STORE_PATH")
        settings = tmp_path / "settings.yaml"
        settings.write_text(f"store:\n  path: {lab.path.name}\n", encoding="utf-8")
        assert _ids(invoke("--settings", str(settings), "--format", "json")[1]) == [job.id]

    def test_bad_filters_are_usage_errors(self, lab: Lab) -> None:
        # argparse's usage errors are said on the stream the command line was given.
        code, out, err = invoke("--store", str(lab.path), "--state", "printed")
        assert (code, out) == (2, "") and "unknown state 'printed'" in err
        code, out, err = invoke("--store", str(lab.path), "--since", "yesterday")
        assert (code, out) == (2, "") and "neither an age" in err

    @pytest.mark.parametrize("age", ["99999999d", "9" * 400 + "w"])
    def test_an_age_reaching_back_before_the_year_1_is_a_usage_error(
        self, lab: Lab, age: str
    ) -> None:
        # Session 45's fuzzer: timedelta's OverflowError left argparse as a traceback.
        code, out, err = invoke("--store", str(lab.path), "--since", age)
        assert (code, out) == (2, "")
        assert f"argument --since: '{age}' reaches back before the year 1: give an age such " \
            "as 30d or a date (2024-05-01)" in err


class TestAFileThatIsNotAStore:
    """Session 45's fuzzer: ``jobs --store F show 1e3``, F a few random bytes, said only that
    1e3 was no job id, and F had been made a new store over its bytes."""

    @pytest.mark.parametrize("argv", [("show", "1e3"), ("list",), ("retry", "1")])
    def test_a_short_file_of_other_bytes_is_refused_and_kept(
        self, tmp_path: Path, argv: tuple[str, ...]
    ) -> None:
        path = tmp_path / "notes.bin"
        content = bytes(range(7, 44))
        path.write_bytes(content)
        done = in_a_process(tmp_path, "jobs", "--store", str(path), *argv,
                            env_extra={"XDG_DATA_HOME": str(tmp_path / "data")})
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (
            f"error: {path}: is not a job store: it is not a SQLite database (name the "
            "store's file (--store, store.path or PREFORM_PIPELINE_STORE_PATH); if this was "
            "the store, it is damaged: move it aside and restore a backup)\n")
        assert path.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.bin"]


class TestShow:
    """One job in full, with its build, its print and its history."""

    def test_the_history_lists_every_transition_with_its_reason(self, lab: Lab) -> None:
        job = lab.job("arch.stl", (S.QUEUED, "size stable for 2 s"),
                      (S.PROCESSING, "moved to processing/"))
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path))
        assert code == 0
        assert out.splitlines()[0] == f"job {job.id}  {job.job_key}  processing"
        history = out.split("history\n", 1)[1].splitlines()
        assert [line.split("  ")[-1].strip() for line in history] == [
            "seen in inbox", "size stable for 2 s", "moved to processing/"
        ]
        assert "queued -> processing" in history[2]

    def test_a_job_is_found_by_its_key_in_any_case(self, lab: Lab) -> None:
        job = lab.job("arch.stl")
        code, out, _ = invoke("show", job.job_key.lower(), "--store", str(lab.path),
                              "--format", "json")
        assert code == 0
        data = json.loads(out)
        assert (data["job"]["id"], data["build"]) == (job.id, None)
        assert [h["to_state"] for h in data["history"]] == ["discovered"]

    def test_a_printed_job_shows_its_build_print_and_verification(self, lab: Lab) -> None:
        job, build = lab.build("crown.stl", S.PREPARING, S.PREPARED)
        lab.store.transition_build(build.id, S.PRINT_SENDING, "sending",
                                   job_name=f"case 7 {build.job_key}")
        lab.store.transition_build(build.id, S.PRINT_SENT, "accepted", printer="Form4-A",
                                   print_job_id="pj-9")
        lab.store.transition_build(build.id, S.PRINT_ERROR, "feed says ERROR",
                                   verified_status="ERROR", verified_message="tank empty")
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path))
        assert code == 0
        assert f"build       {build.id}  {build.job_key}  print_error" in out
        assert f"job pj-9 on Form4-A, named 'case 7 {build.job_key}'" in out
        assert "verified    ERROR at " in out and ": tank empty" in out

    def test_a_refused_print_says_it_was_not_sent_and_invents_no_job(self, lab: Lab) -> None:
        # Session 32: a refused print showed "job ? on <queue>", as if a job were lost.
        job, build = lab.build("crown.stl", S.PREPARING, S.PREPARED)
        lab.store.transition_build(build.id, S.PRINT_SENDING, "sending", printer="queue-7",
                                   job_name="case 7")
        lab.store.transition_build(build.id, S.FAILED,
                                   "the server refused the print: NOT_LOGGED_IN")
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path))
        assert code == 0
        line = next(x for x in out.splitlines() if x.startswith("print "))
        assert line.split(None, 1)[1].startswith(
            "not sent: queue-7 did not take it (the reason says why), named 'case 7', tried ")
        assert "?" not in line
        # Its state's meaning names a refused print (it said "preparation failed" only).
        assert ("  preparation failed, an operator rejected its build, the print was refused, "
                "or the file could not be used") in out

    def test_a_rejected_build_was_never_sent_and_no_printer_refused_it(
        self, lab: Lab
    ) -> None:
        # Session 36's trial: an operator's rejection read "the printer did not take it".
        job, build = lab.build("crown.stl", S.PREPARING, S.PREPARED)
        lab.store.transition_build(build.id, S.AWAITING_APPROVAL, "held",
                                   job_name=f"case 7 {build.job_key}")
        lab.store.transition_build(build.id, S.FAILED, "rejected by olivia (web): shade")
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path))
        assert code == 0
        line = next(x for x in out.splitlines() if x.startswith("print "))
        assert line.split(None, 1)[1] == (
            f"not sent to the printer (the reason says why), named 'case 7 {build.job_key}'")
        # The state's meaning names a rejection (it named preparation and refusals only).
        assert ("  preparation failed, an operator rejected its build, the print was refused, "
                "or the file could not be used") in out

    def test_a_runs_own_record_is_not_listed_among_the_fields(self, lab: Lab) -> None:
        # Session 36's trial: a run's job showed `fields _run={'create_time': ..., 'pid': ...}`.
        from preform_pipeline.executor.ledger import RUN_FIELD

        job = lab.store.create_job(recipe="dental", source_path="/shop/inbox/crown.stl",
                                   fields={RUN_FIELD: {"pid": 7}, "patient_ref": "P-1"})
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path))
        assert code == 0
        assert [x for x in out.splitlines() if x.startswith("fields ")] == [
            "fields      patient_ref=P-1"]
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path), "--format", "json")
        assert json.loads(out)["job"]["fields"] == {RUN_FIELD: {"pid": 7}, "patient_ref": "P-1"}

    @pytest.mark.parametrize(("state", "words"), [
        (S.PRINT_SENDING, "being sent to queue-7, no answer yet, named 'case 7', since "),
        (S.PRINT_SENT, "taken by queue-7, which gave no job id, named 'case 7', sent "),
        (S.UNVERIFIED, "not known whether queue-7 took it (the reason says how to settle it)"),
    ])
    def test_a_print_without_a_job_id_says_what_is_known(
        self, lab: Lab, state: JobState, words: str
    ) -> None:
        job, build = lab.build("crown.stl", S.PREPARING, S.PREPARED)
        lab.store.transition_build(build.id, S.PRINT_SENDING, "sending", printer="queue-7",
                                   job_name="case 7")
        if state is not S.PRINT_SENDING:
            lab.store.transition_build(build.id, state, f"to {state}")
        _, out, _ = invoke("show", str(job.id), "--store", str(lab.path))
        line = next(x for x in out.splitlines() if x.startswith("print "))
        assert line.split(None, 1)[1].startswith(words)

    def test_a_build_a_full_disk_stopped_says_which_disk_to_free_and_how_to_retry(
        self, lab: Lab
    ) -> None:
        """The reason quotes the refused write; the store's ``full_disk`` says what helps,
        in the hot folder's note's words, and the JSON form gives the folder itself."""
        job, build = lab.build("crown.stl", S.PREPARING)
        lab.store.transition_build(
            build.id, S.FAILED, "/lab/out/day/crown.form: cannot move the saved file into "
            "place: No space left on device (the disk is full: free some space on it, then "
            "try again)", full_disk=Path("/lab/out/day"))
        code, out, err = invoke("show", str(job.id), "--store", str(lab.path))
        assert (code, err) == (0, "")
        assert [x for x in out.splitlines() if x.startswith("disk full")] == [
            "disk full   free some space on the disk holding /lab/out/day, then: "
            f"preform-pipeline jobs --store {lab.path} retry {job.job_key}"]
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path), "--format", "json")
        assert json.loads(out)["build"]["full_disk"] == "/lab/out/day"

    def test_a_full_disk_failure_a_later_job_put_right_asks_for_no_retry(
        self, lab: Lab
    ) -> None:
        """A later job printed the same file with the same recipe: `jobs retry` refuses the
        failed one ("nothing to do"), so its `disk full` line names no retry."""
        job = lab.store.create_job(recipe="dental", source_path="/hot/processing/crown.stl",
                                   content_hash="c1", state=S.PROCESSING)
        build = lab.store.create_build(recipe="dental", job_ids=[job.id])
        lab.store.transition_build(build.id, S.PREPARING, "on a server")
        lab.store.transition_build(build.id, S.FAILED, "No space left on device",
                                   full_disk=Path("/lab/out/day"))
        later = lab.store.create_job(recipe="dental", source_path="/hot/processing/crown.stl",
                                     content_hash="c1", state=S.PROCESSING)
        again = lab.store.create_build(recipe="dental", job_ids=[later.id])
        for state in (S.PREPARING, S.PREPARED, S.DONE):
            lab.store.transition_build(again.id, state, "test")
        code, out, err = invoke("show", str(job.id), "--store", str(lab.path))
        assert (code, err) == (0, "")
        assert "nothing to do" in out
        assert [x for x in out.splitlines() if x.startswith("disk full")] == [
            "disk full   free some space on the disk holding /lab/out/day"]

    def test_a_build_failed_for_another_cause_names_no_disk(self, lab: Lab) -> None:
        job, build = lab.build("crown.stl", S.PREPARING)
        lab.store.transition_build(build.id, S.FAILED, "not a mesh")
        _, out, _ = invoke("show", str(job.id), "--store", str(lab.path))
        assert "disk full" not in out and "free some space" not in out
        _, out, _ = invoke("show", str(job.id), "--store", str(lab.path), "--format", "json")
        assert json.loads(out)["build"]["full_disk"] is None

    def test_an_unknown_job_is_an_error(self, lab: Lab) -> None:
        lab.job("a.stl")
        code, out, err = invoke("show", "42", "--store", str(lab.path))
        assert (code, out) == (1, "")
        assert "no job 42" in err
        code, _, err = invoke("show", "PP-0000000000", "--store", str(lab.path))
        assert code == 1 and "no job with key PP-0000000000" in err
        code, _, err = invoke("show", "arch", "--store", str(lab.path))
        assert code == 1 and "neither a job id nor a job key" in err

    def test_show_never_creates_a_store(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.sqlite3"
        code, _, err = invoke("show", "1", "--store", str(path))
        assert code == 1 and "no job store here" in err and not path.exists()


class TestRetry:
    """Retry queues a job that ended badly, and only such a job."""

    @pytest.mark.parametrize("state", [S.FAILED, S.CANCELLED, S.DUPLICATE_SKIPPED])
    def test_a_job_that_ended_badly_is_queued_again(self, lab: Lab, state: JobState) -> None:
        job = lab.job("a.stl", (state, "it went wrong"))
        code, out, err = invoke("retry", str(job.id), "--store", str(lab.path))
        assert (code, err) == (0, "")
        assert out == f"job {job.id} ({job.job_key}) queued again (was {state}); the hot " \
                      "folder picks it up\n"
        last = lab.store.history(job.id)[-1]
        assert (last.from_state, last.to_state, last.reason) == (state, S.QUEUED,
                                                                 "retried by user")

    def test_a_print_that_failed_is_retried_without_its_old_build(self, lab: Lab) -> None:
        job, _ = lab.build("a.stl", S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT,
                           S.ABORTED)
        code, out, _ = invoke("retry", job.job_key, "--store", str(lab.path), "--format", "json")
        data = json.loads(out)
        assert (code, data["previous_state"], data["job"]["state"], data["job"]["build_id"]) == (
            0, "aborted", "queued", None
        )

    def test_an_unverified_retry_warns_that_the_print_may_exist(self, lab: Lab) -> None:
        job, _ = lab.build("a.stl", S.PREPARING, S.PREPARED, S.PRINT_SENDING)
        lab.store.transition_build(job.build_id or 0, S.UNVERIFIED, "deadline passed")
        code, _, err = invoke("retry", str(job.id), "--store", str(lab.path))
        assert code == 0
        assert "never verified" in err
        assert f"preform-pipeline jobs --store {lab.path} cancel {job.id}" in err

    @pytest.mark.parametrize(
        ("moves", "why"),
        [
            ([(S.QUEUED, "ok")], "still being worked on"),
            ([(S.QUEUED, "ok"), (S.PROCESSING, "ok")], "still being worked on"),
        ],
    )
    def test_an_active_job_is_not_retried(
        self, lab: Lab, moves: list[tuple[JobState, str]], why: str
    ) -> None:
        job = lab.job("a.stl", *moves)
        code, out, err = invoke("retry", str(job.id), "--store", str(lab.path))
        assert (code, out) == (1, "")
        assert why in err and "Only aborted, cancelled" in err
        assert lab.store.get_job(job.id).state is moves[-1][0]

    def test_a_finished_job_is_not_retried(self, lab: Lab) -> None:
        job, _ = lab.build("a.stl", S.PREPARING, S.DONE)
        code, _, err = invoke("retry", str(job.id), "--store", str(lab.path))
        assert code == 1 and "is done: it completed" in err
        assert lab.store.get_job(job.id).state is S.DONE


class TestCancel:
    """Cancel stops a job whose print has not gone out, and explains when it has."""

    @pytest.mark.parametrize("state", [S.DISCOVERED, S.QUEUED])
    def test_a_job_not_yet_printed_is_cancelled(self, lab: Lab, state: JobState) -> None:
        job = lab.job("a.stl", *([(S.QUEUED, "ok")] if state is S.QUEUED else []))
        code, out, _ = invoke("cancel", str(job.id), "--store", str(lab.path))
        assert code == 0
        assert out == f"job {job.id} ({job.job_key}) cancelled (was {state})\n"
        last = lab.store.history(job.id)[-1]
        assert (last.to_state, last.reason) == (S.CANCELLED, "cancelled by user")

    def test_cancelling_a_job_of_a_prepared_build_prepares_the_build_again(
        self, lab: Lab
    ) -> None:
        job, build = lab.build("a.stl", S.PREPARING, S.PREPARED)
        code, out, _ = invoke("cancel", str(job.id), "--store", str(lab.path))
        assert code == 0
        assert f"build {build.id} will be prepared again without it" in out
        assert lab.store.get_build(build.id).state is S.PROCESSING

    @pytest.mark.parametrize("state", [S.PRINT_SENDING, S.PRINT_SENT, S.VERIFYING])
    def test_a_job_whose_print_was_sent_is_not_cancelled_here(
        self, lab: Lab, state: JobState
    ) -> None:
        path = [S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT, S.VERIFYING]
        job, build = lab.build("a.stl", *path[: path.index(state) + 1], printer="Form4-A")
        code, out, err = invoke("cancel", str(job.id), "--store", str(lab.path))
        assert (code, out) == (1, "")
        assert "cannot be cancelled here" in err and "Form4-A" in err
        assert build.job_key in err and "Formlabs Dashboard" in err
        assert lab.store.get_job(job.id).state is state

    def test_cancelling_twice_is_harmless(self, lab: Lab) -> None:
        job = lab.job("a.stl", (S.CANCELLED, "cancelled by user"))
        code, out, _ = invoke("cancel", str(job.id), "--store", str(lab.path))
        assert (code, out) == (0, f"job {job.id} ({job.job_key}) is already cancelled\n")
        assert len(lab.store.history(job.id)) == 2

    def test_a_job_that_is_over_cannot_be_cancelled(self, lab: Lab) -> None:
        job = lab.job("a.stl", (S.FAILED, "bad"))
        code, _, err = invoke("cancel", str(job.id), "--store", str(lab.path))
        assert code == 1 and "is failed: it is over" in err


class TestCases:
    """A case id names every job of the case: listed, shown, retried and cancelled together."""

    def _case(self, lab: Lab, case_id: str, *names: str, state: JobState = S.FAILED
              ) -> list[Job]:
        jobs = []
        for name in names:
            job = lab.store.create_job(recipe="dental", source_path=f"/in/{case_id}/{name}",
                                       case_id=case_id, state=S.QUEUED)
            if state is not S.QUEUED:
                job = lab.store.transition(job.id, state, "label does not fit")
            jobs.append(job)
        return jobs

    def test_the_list_shows_each_jobs_case_and_printer(self, lab: Lab) -> None:
        self._case(lab, "C-1042", "upper.stl")
        job, _ = lab.build("b.stl", S.PREPARING, S.PREPARED, S.PRINT_SENDING,
                           printer="Form4-Lab2")
        code, out, _ = invoke("--store", str(lab.path))
        lines = out.splitlines()
        assert code == 0
        assert lines[1].split()[:4] == ["1", "failed", "C-1042", "-"]
        assert lines[2].split()[:4] == [str(job.id), "print_sending", "-", "Form4-Lab2"]

    def test_retry_by_case_queues_every_job_of_the_case_and_no_other(self, lab: Lab) -> None:
        upper, lower = self._case(lab, "C-1042", "upper.stl", "lower.stl")
        [other] = self._case(lab, "C-7", "upper.stl")
        code, out, err = invoke("retry", "C-1042", "--store", str(lab.path))
        assert (code, err) == (0, "")
        assert out.count("queued again") == 2
        states = {j.id: j.state for j in lab.store.list_jobs()}
        assert (states[upper.id], states[lower.id], states[other.id]) == (
            S.QUEUED, S.QUEUED, S.FAILED
        )

    def test_show_and_cancel_by_case_cover_every_job_of_the_case(self, lab: Lab) -> None:
        self._case(lab, "C-9", "upper.stl", "lower.stl", state=S.QUEUED)
        code, out, _ = invoke("show", "C-9", "--store", str(lab.path), "--format", "json")
        assert code == 0 and len(json.loads(out)["jobs"]) == 2
        code, out, _ = invoke("cancel", "C-9", "--store", str(lab.path))
        assert code == 0 and out.count("cancelled (was queued)") == 2

    def test_a_case_named_by_a_number_is_reached_with_the_case_prefix(self, lab: Lab) -> None:
        lab.job("a.stl", (S.FAILED, "bad"))  # job id 1
        [job] = self._case(lab, "1", "upper.stl")
        code, out, _ = invoke("show", "case:1", "--store", str(lab.path), "--format", "json")
        assert code == 0 and json.loads(out)["job"]["id"] == job.id
        code, out, _ = invoke("show", "1", "--store", str(lab.path), "--format", "json")
        assert code == 0 and json.loads(out)["job"]["id"] == 1

    def test_an_unknown_case_is_an_error_naming_it(self, lab: Lab) -> None:
        code, _, err = invoke("retry", "C-404", "--store", str(lab.path))
        assert code == 1 and "no job has case id 'C-404'" in err


class TestShowAHotFolderJob:
    """``show`` says in words what the hot folder recorded, and where the file is now."""

    def _job(self, lab: Lab, tmp_path: Path, *, at: str, state: JobState = S.FAILED,
             moved: bool | None = True, previous: str | None = "C-1/upper.stl",
             rel: str = "C-1/upper.stl", sidecar: str | None = None,
             duplicate_of: str | None = None, **fields: str) -> Job:
        inbox = tmp_path / "inbox"
        inbox.mkdir(exist_ok=True)  # seen from here, as on the machine of the hot folder
        place = JobPlace(
            inbox, rel, previous=inbox / previous if previous else None,
            attachments=(Attachment("C-1/C-1.yaml", str(inbox / sidecar)),) if sidecar else (),
            duplicate_of=duplicate_of, moved=moved)
        job = lab.store.create_job(
            recipe="dental", source_path=inbox / at, case_id="C-1", state=S.QUEUED,
            fields={**fields, HOTFOLDER_FIELD: place.to_json()})
        path = {S.QUEUED: (), S.FAILED: (S.FAILED,), S.PROCESSING: (S.PROCESSING,),
                S.DONE: (S.PROCESSING, S.PREPARING, S.DONE)}[state]
        for step in path:
            job = lab.store.transition(job.id, step, f"to {step.value}")
        return job

    def _show(self, lab: Lab, job: Job) -> dict[str, str]:
        code, out, err = invoke("show", str(job.id), "--store", str(lab.path))
        assert (code, err) == (0, "")
        # A superseded job's note line (store/superseded.py) is not one of the record's.
        head = [line for line in out.split("\n\nhistory", 1)[0].splitlines()[2:]
                if not line.startswith("  superseded by ")]
        width = head[0].index("  ") + 2
        width += len(head[0][width:]) - len(head[0][width:].lstrip())
        return {line[:width].strip(): line[width:] for line in head}

    def _json(self, lab: Lab, job: Job) -> dict[str, Any]:
        code, out, err = invoke("show", str(job.id), "--store", str(lab.path), "--format",
                                "json")
        assert (code, err) == (0, "")
        view: dict[str, Any] = json.loads(out)
        return view

    def _file(self, tmp_path: Path, rel: str) -> Path:
        path = tmp_path / "inbox" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"solid x\nendsolid x\n")
        return path

    def test_the_record_is_shown_in_words_and_only_the_sidecars_fields_as_fields(
        self, lab: Lab, tmp_path: Path
    ) -> None:
        here = self._file(tmp_path, "failed/C-1/upper.stl")
        side = self._file(tmp_path, "failed/C-1/C-1.yaml")
        job = self._job(lab, tmp_path, at="failed/C-1/upper.stl", sidecar="failed/C-1/C-1.yaml",
                        duplicate_of="PP-4K7QX0M2ZD", customer="ACME", order_id="7")
        shown = self._show(lab, job)
        assert shown["file"] == str(here)
        assert shown["dropped as"] == f"C-1/upper.stl in {tmp_path / 'inbox'}"
        assert shown["sidecar"] == str(side)
        assert shown["duplicate of"] == "PP-4K7QX0M2ZD"
        assert shown["fields"] == "customer=ACME, order_id=7"
        code, out, _ = invoke("show", str(job.id), "--store", str(lab.path), "--format", "json")
        assert code == 0 and HOTFOLDER_FIELD in json.loads(out)["job"]["fields"]

    def test_a_job_without_the_record_shows_its_name_and_no_fields(
        self, lab: Lab, tmp_path: Path
    ) -> None:
        job = lab.store.create_job(recipe="dental", source_path=self._file(tmp_path, "a.stl"))
        shown = self._show(lab, job)
        assert shown["dropped as"] == "a.stl" and "fields" not in shown
        assert "sidecar" not in shown and "duplicate of" not in shown

    def test_a_file_put_back_into_the_inbox_and_not_taken_yet(
        self, lab: Lab, tmp_path: Path
    ) -> None:
        back = self._file(tmp_path, "C-1/upper.stl")
        job = self._job(lab, tmp_path, at="failed/C-1/upper.stl", sidecar="failed/C-1/C-1.yaml")
        shown = self._show(lab, job)
        failed = tmp_path / "inbox" / "failed" / "C-1"
        assert shown["file"] == (f"{failed / 'upper.stl'}: not there now; put back into the "
                                 f"inbox as {back}, not taken yet")
        assert shown["sidecar"] == f"{failed / 'C-1.yaml'}: not there now (moved or removed since)"

    def test_a_file_dropped_again_names_the_latest_job_that_took_it(
        self, lab: Lab, tmp_path: Path
    ) -> None:
        first = self._job(lab, tmp_path, at="failed/C-1/upper.stl", sidecar="failed/C-1/C-1.yaml")
        self._job(lab, tmp_path, at="failed/C-1/lower.stl", rel="C-1/lower.stl")
        self._job(lab, tmp_path, at="failed/2/C-1/upper.stl")  # dropped again before, failed
        latest = self._job(lab, tmp_path, at="done/C-1/upper.stl", state=S.DONE)
        self._file(tmp_path, "done/C-1/upper.stl")
        shown = self._show(lab, first)
        failed = tmp_path / "inbox" / "failed" / "C-1"
        # Its case's member dropped again and prepared: it is put right (session 47).
        assert f"  superseded by job {latest.id} ({latest.job_key}, done): " in invoke(
            "show", str(first.id), "--store", str(lab.path))[1]
        assert shown["file"] == (f"{failed / 'upper.stl'}: not there now; dropped again as "
                                 f"job {latest.id} {latest.job_key} (done)")
        assert shown["sidecar"] == (
            f"{failed / 'C-1.yaml'}: not there now; dropped again with its file")
        # The latest names no later job: its own file is there.
        assert self._show(lab, latest)["file"] == str(tmp_path / "inbox" / "done/C-1/upper.stl")

    def test_a_case_shows_each_job_with_the_job_that_took_its_file_again(
        self, lab: Lab, tmp_path: Path
    ) -> None:
        first = self._job(lab, tmp_path, at="failed/C-1/upper.stl")
        again = self._job(lab, tmp_path, at="done/C-1/upper.stl", state=S.DONE)
        code, out, _ = invoke("show", "C-1", "--store", str(lab.path))
        assert code == 0
        assert f"dropped again as job {again.id} {again.job_key} (done)" in out
        assert out.count("not there now") == 2  # the first's file, and the later one's too
        assert first.id < again.id

    @pytest.mark.parametrize(("moved", "state"), [(False, S.FAILED), (None, S.PROCESSING)])
    def test_a_move_cut_short_says_where_the_file_still_is(
        self, lab: Lab, tmp_path: Path, moved: bool | None, state: JobState
    ) -> None:
        still = self._file(tmp_path, "C-1/upper.stl")
        job = self._job(lab, tmp_path, at="failed/C-1/upper.stl", moved=moved, state=state)
        assert self._show(lab, job)["file"] == (
            f"{tmp_path / 'inbox' / 'failed/C-1/upper.stl'}: not there yet; still at {still}, "
            "being moved")
        now = self._json(lab, job)["file_now"]
        assert (now["status"], now["now_at"]) == ("being_moved", str(still))

    def test_an_old_record_of_a_finished_move_is_not_read_as_a_move_under_way(
        self, lab: Lab, tmp_path: Path
    ) -> None:
        back = self._file(tmp_path, "C-1/upper.stl")
        job = self._job(lab, tmp_path, at="failed/C-1/upper.stl", moved=None)
        assert self._show(lab, job)["file"].endswith(f"put back into the inbox as {back}, "
                                                     "not taken yet")

    def test_a_file_gone_without_a_trace_says_so(self, lab: Lab, tmp_path: Path) -> None:
        job = self._job(lab, tmp_path, at="done/C-1/upper.stl", previous=None, state=S.DONE)
        gone = tmp_path / "inbox" / "done/C-1/upper.stl"
        assert self._show(lab, job)["file"] == f"{gone}: not there now (moved or removed since)"
        assert self._json(lab, job)["file_now"]["status"] == "gone"
        bare = lab.store.create_job(recipe="dental", source_path=tmp_path / "x.stl")
        assert self._show(lab, bare)["file"] == (
            f"{tmp_path / 'x.stl'}: not there now (moved or removed since)")

    def test_the_json_form_says_where_the_file_is_as_the_words_do(
        self, lab: Lab, tmp_path: Path
    ) -> None:
        # Session 31 left it: the words said "put back into the inbox", the JSON nothing.
        back = self._file(tmp_path, "C-1/upper.stl")
        job = self._job(lab, tmp_path, at="failed/C-1/upper.stl", sidecar="failed/C-1/C-1.yaml")
        failed = tmp_path / "inbox" / "failed" / "C-1"
        view = self._json(lab, job)
        assert view["file_now"] == {
            "path": str(failed / "upper.stl"), "status": "put_back", "now_at": str(back),
            "dropped_again_as": None}
        assert view["sidecars_now"] == [{
            "path": str(failed / "C-1.yaml"), "status": "gone", "now_at": None,
            "dropped_again_as": None}]
        assert view["job"]["source_path"] == str(failed / "upper.stl")  # the store's, as is

        back.unlink()
        latest = self._job(lab, tmp_path, at="done/C-1/upper.stl", state=S.DONE)
        here = self._file(tmp_path, "done/C-1/upper.stl")
        again = {"id": latest.id, "job_key": latest.job_key, "state": "done"}
        view = self._json(lab, job)
        assert view["file_now"] == {
            "path": str(failed / "upper.stl"), "status": "dropped_again", "now_at": None,
            "dropped_again_as": again}
        assert view["sidecars_now"][0]["status"] == "dropped_again"
        assert view["sidecars_now"][0]["dropped_again_as"] == again
        assert self._json(lab, latest)["file_now"] == {
            "path": str(here), "status": "there", "now_at": None, "dropped_again_as": None}
        assert self._json(lab, latest)["sidecars_now"] == []
