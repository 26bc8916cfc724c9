"""The reports of a build's files quote the build's outcome, which is encoded once per build
(not once per file: a build of n files would cost n x n): each report is still the text the
JSON encoder gives the whole report, indentation included, and quotes its own build's
outcome, not the last one encoded. A real store and real files; no server."""

from __future__ import annotations

import json
from pathlib import Path

from daemon_support import Script, make_daemon, processing_job

from preform_pipeline.executor import BuildOutcome, BuildStatus
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.report import build_to_dict
from preform_pipeline.store import Build, JobState, SqliteJobStore


def _prepared(store: SqliteJobStore, inbox: Path, names: list[str]) -> Build:
    """A build of ``names`` (in ``inbox``'s processing/), prepared: its files owed done/."""
    job_ids = [processing_job(store, inbox, name, seed) for seed, name in enumerate(names)]
    build = store.create_build(recipe="hot", job_ids=job_ids)
    for state in (JobState.PREPARING, JobState.PREPARED, JobState.DONE):
        build = store.transition_build(build.id, state, "test")
    return build


def _outcome(build: Build, names: list[str], server: str) -> BuildOutcome:
    return BuildOutcome(
        name=build.job_key, index=1, status=BuildStatus.SUCCEEDED,
        models=tuple(Path(n).stem for n in names), source_files=tuple(names), server=server,
        steps_done=("import_models", "auto_layout", "save_form"),
        outputs=(Path("/out") / f"{build.job_key}.form",), warnings=('a "quoted"\nline',),
    )


def _report_text(inbox: Path, name: str) -> str:
    return (inbox / "done" / f"{name}.report.json").read_text("utf-8")


class TestEachReportQuotesItsBuildsOutcome:
    def test_a_report_is_the_encoders_own_text_and_quotes_the_whole_outcome(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
    ) -> None:
        outcomes: OutcomeFolders = make_daemon(tmp_path, store, script, recipe).outcomes
        inbox = tmp_path / "inbox"
        # A name beyond ASCII: escaped in the quoted outcome as in the rest of the report.
        names = ["a.stl", "cr\u00f4ne-\u00fc.stl", "c.stl"]
        build = _prepared(store, inbox, names)
        outcome = _outcome(build, names, "pfs-1")

        outcomes.settle_build(build, outcome)

        for name in names:
            text = _report_text(inbox, name)
            report = json.loads(text)
            assert text == json.dumps(report, indent=2) + "\n"
            assert report["file"] == name
            assert report["outcome"] == json.loads(json.dumps(build_to_dict(outcome)))
            keys = list(report)
            assert keys[keys.index("outcome") + 1] == "files_written"  # in its place

    def test_two_builds_settled_in_turn_each_quote_their_own(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
    ) -> None:
        outcomes: OutcomeFolders = make_daemon(tmp_path, store, script, recipe).outcomes
        inbox = tmp_path / "inbox"
        first = _prepared(store, inbox, ["a.stl", "b.stl"])
        second = _prepared(store, inbox, ["c.stl"])

        outcomes.settle_build(first, _outcome(first, ["a.stl", "b.stl"], "pfs-1"))
        outcomes.settle_build(second, _outcome(second, ["c.stl"], "pfs-2"))

        quoted = {name: json.loads(_report_text(inbox, name))["outcome"]
                  for name in ("a.stl", "b.stl", "c.stl")}
        assert {n: (o["build"], o["server"], o["source_files"]) for n, o in quoted.items()} == {
            "a.stl": (first.job_key, "pfs-1", ["a.stl", "b.stl"]),
            "b.stl": (first.job_key, "pfs-1", ["a.stl", "b.stl"]),
            "c.stl": (second.job_key, "pfs-2", ["c.stl"]),
        }
