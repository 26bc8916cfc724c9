"""A file the tool will not print is said alike by ``run`` and by the hot folder.

Until session 42 the two had a rule each: a ``.zip`` or a ``.form`` dropped in an inbox was to
be converted to STL, OBJ or 3MF, while ``run`` said to unpack it or open it in PreForm; and a
PNG renamed ``.stl`` was counted as a model by both (``rejected 1 model``), the hot folder
telling to open it in PreForm and fix it. Each test runs ``run`` on a recipe (in the test's
process, a real SQLite store) over one folder, and one pass of a real daemon over an inbox
holding the same files (a real SQLite store, the scripted runner: nothing here is printed),
and compares the lines a user reads and the structured events.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from daemon_support import Script, make_daemon, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.executor import PlainReporter
from preform_pipeline.geometry.sniff import EXPORT_HINT
from preform_pipeline.hotfolder.testing import write_recipe
from preform_pipeline.plan.advice import by_name
from preform_pipeline.store import SqliteJobStore
from tests.command_line import InProcess

REPO_ROOT = Path(__file__).resolve().parents[3]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(120)
#: What helps with a file whose content is no model, in the hot folder's words.
NOT_A_MODEL_TODO = ("it holds no model to fix: drop the model's own file instead, and keep this "
                    "one out of the inbox")
#: One file of each kind the brief of session 42 names, none of them a format printed.
OTHER_FORMATS: dict[str, bytes] = {
    "scan.zip": b"PK\x03\x04" + bytes(26),
    "C-7.form": b"PK\x03\x04" + bytes(26),
    "bracket.stp": b"ISO-10303-21;\n",
    "housing.step": b"ISO-10303-21;\n",
    "shape.amf": b"<?xml version='1.0'?><amf/>\n",
    "scan.ply": b"ply\nformat ascii 1.0\n",
    "photo.png": PNG,
    "photo.jpg": b"\xff\xd8\xff\xe0" + bytes(60),
    "rx.pdf": b"%PDF-1.4\n",
    "notes.txt": b"invoice 1042\n",
    "data.xyz": b"1 2 3\n",
}


def _files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
        os.utime(folder / name, (1e9, 1e9))  # long since written: taken at once


def _said_by_run(tmp_path: Path, in_process: InProcess,
                 files: dict[str, bytes]) -> tuple[list[str], dict[str, str], list[dict[str, Any]]]:
    """``run`` over ``files``: its heading, each file's reason by name, its log's events."""
    given = tmp_path / "given"
    _files(given, files)
    done = in_process(tmp_path, "run", str(RECIPE), str(given), "--store", "run.sqlite3",
                      "--output", "out")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    headings = [line for line in lines if line.startswith("rejected ")]
    reasons = dict(line.removeprefix(f"  {given}/").split(": ", 1)
                   for line in lines if line.startswith(f"  {given}/"))
    events = [json.loads(line) for log in (tmp_path / "out" / "logs").glob("*.jsonl")
              for line in log.read_text(encoding="utf-8").splitlines()]
    return headings, reasons, events


def _said_by_the_hot_folder(
    tmp_path: Path, store: SqliteJobStore, files: dict[str, bytes]
) -> tuple[list[str], dict[str, str], list[dict[str, Any]]]:
    """One pass of the daemon over an inbox of ``files``: its headings, each file's line
    by name (where it is now: failed/), the events."""
    inbox = tmp_path / "inbox"
    _files(inbox, files)
    daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                         write_recipe(tmp_path, printer=None))
    console = io.StringIO()  # what `watch` prints when not on a terminal
    daemon.reporter = daemon.worker.reporter = PlainReporter(console)
    with capture_logs() as logs:
        run_daemon_once(daemon)
    lines = console.getvalue().splitlines()
    failed = inbox / "failed"
    reasons = dict(line.removeprefix(f"  {failed}/").split(": ", 1)
                   for line in lines if line.startswith(f"  {failed}/"))
    return [line for line in lines if line.startswith("rejected ")], reasons, logs


class TestAFileOfAnotherFormat:
    """Each is said in the same words by both: what it is, and the advice true of it."""

    def test_run_and_the_hot_folder_say_the_same_of_each(
        self, tmp_path: Path, in_process: InProcess, store: SqliteJobStore
    ) -> None:
        expected = {name: by_name(Path(name)).said for name in OTHER_FORMATS}
        ran, by_run, _ = _said_by_run(tmp_path, in_process, OTHER_FORMATS)
        dropped, by_hot_folder, logs = _said_by_the_hot_folder(tmp_path, store, OTHER_FORMATS)
        assert by_run == expected
        assert by_hot_folder == expected
        assert ran == ["rejected 11 files:"]  # a photo among them: not all models
        assert expected["scan.zip"].endswith("; unpack it, and give the model files it holds "
                                             "instead")
        assert expected["C-7.form"].endswith("; open it in PreForm, or give the model files it "
                                             "was made from instead")
        # The hot folder refuses each loose file alone; its job fails with the same words.
        assert sorted(dropped) == sorted(["rejected 1 model:"] * 6 + ["rejected 1 file:"] * 5)
        failed = {e["job_key"]: e["reason"] for e in logs
                  if e["event"] == "job_transition" and e["to_state"] == "failed"}
        assert sorted(failed.values()) == sorted(by_name(Path(n)).why for n in OTHER_FORMATS)


class TestAFileThatIsNoModelUnderAModelsName:
    """A PNG or a text renamed ``.stl`` is said to be no model, by both, and kept."""

    FILES: ClassVar[dict[str, bytes]] = {"photo.stl": PNG, "words.stl": b"just some words\n"}

    @staticmethod
    def _said_to_be_no_model(headings: list[str], reasons: dict[str, str],
                             events: list[dict[str, Any]]) -> None:
        """Counted as files, each said to be what its bytes show, in the line and the event."""
        assert headings == ["rejected 2 files:"]
        assert reasons["photo.stl"].startswith("this is a PNG image, not an STL")
        assert reasons["words.stl"].startswith("this is a text file that is not an STL (")
        unreadable = {Path(e["path"]).name: (e["not_a_model"], e["looks_like"])
                      for e in events if e["event"] == "model_unreadable"}
        assert unreadable == {"photo.stl": (True, "a PNG image"),
                              "words.stl": (True, "a text file")}

    def test_run_calls_it_a_file_and_says_what_it_looks_like(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        headings, reasons, events = _said_by_run(tmp_path, in_process, self.FILES)
        self._said_to_be_no_model(headings, reasons, events)
        # The reader's advice, once: `run` has no advice of its own for such a file.
        assert all(reason.count(EXPORT_HINT) == 1 for reason in reasons.values()), reasons
        # The JSON report's entries say it as the event does (session 42's review).
        (report,) = (tmp_path / "out" / "reports").glob("*.json")
        rejected = {Path(r["path"]).name: (r["not_a_model"], r["looks_like"])
                    for r in json.loads(report.read_text(encoding="utf-8"))["rejected"]}
        assert rejected == {"photo.stl": (True, "a PNG image"), "words.stl": (True, "a text file")}
        for name, data in self.FILES.items():  # the user's files stay as they were
            assert (tmp_path / "given" / name).read_bytes() == data

    def test_the_hot_folder_calls_it_a_file_and_does_not_send_it_to_preform(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        headings, reasons, logs = _said_by_the_hot_folder(tmp_path, store, self.FILES)
        self._said_to_be_no_model(headings, reasons, logs)
        # What helps is said once: the hot folder's advice, not the reader's hint before it
        # (session 42's review); the same in the job's recorded reason.
        assert reasons == {
            "photo.stl": f"this is a PNG image, not an STL; {NOT_A_MODEL_TODO}",
            "words.stl": ("this is a text file that is not an STL (an ASCII STL starts with "
                          f"'solid'); {NOT_A_MODEL_TODO}"),
        }
        failed = [e["reason"] for e in logs
                  if e["event"] == "job_transition" and e["to_state"] == "failed"]
        assert len(failed) == 2 and not any(EXPORT_HINT in reason for reason in failed), failed
        for name, data in self.FILES.items():  # kept, beside its note
            assert (tmp_path / "inbox" / "failed" / name).read_bytes() == data
