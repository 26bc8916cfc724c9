"""The hostile corpus dropped into a real hot folder (``watch --once`` in a subprocess).

Every hostile file ends in failed/ beside an .error.txt saying why, no file is lost, links
out of the inbox are never followed, and the daemon goes on to prepare a good file dropped
with them. Linux-specific only in the corpus entries that need POSIX (fifos, byte names).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from test_hotfolder_watch_command import environment

from preform_pipeline.geometry import write_stl
from preform_pipeline.hotfolder.files import MAX_NAME_BYTES
from preform_pipeline.hotfolder.intake import Drop, Intake
from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import JobState, SqliteJobStore
from tests.command_line import InProcess
from tests.conftest import AS_A_USER
from tests.hostile_corpus import tetra, write_corpus, write_yaml_corpus

TIMEOUT_S = 240.0
#: A running daemon's waits: within pytest's own timeout, so a miss says what it waited for.
RUNNING_S = 60.0


def every_file(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink() or not p.is_dir()) and not p.name.endswith(".txt")
    }


def quick_settings(tmp_path: Path, hotfolders: Mapping[str, Any] | None = None) -> Path:
    """Hot-folder settings whose inbox takes a file 0.2 s after it stops changing."""
    recipe = write_recipe(tmp_path, printer=None)
    return write_hotfolder_settings(
        tmp_path, recipe, fleet_dir=tmp_path / "fleet",
        inbox={"incomplete_timeout_s": 0.2, "quiet_period_s": 0.2}, hotfolders=hotfolders,
    )


def watch_once(settings: Path, cwd: Path, prefix: tuple[str, ...] = ()
               ) -> subprocess.CompletedProcess[str]:
    """``preform-pipeline watch SETTINGS --once`` in a subprocess, as cron would start it
    (``prefix``: :data:`AS_A_USER`, to run it as a user)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once"],
        env=environment(), cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False,
    )


class TestHostileDrops:
    """Hostile files go to failed/ with a true note; good files still print."""

    def test_corpus_in_the_inbox(self, tmp_path: Path) -> None:
        # Several entries share content (the same PNG under three names): take them all.
        settings = quick_settings(tmp_path, hotfolders={"duplicates": "print"})
        inbox = tmp_path / "inbox"
        written = write_corpus(inbox, tmp_path / "outside")
        entries = [e for e in written if e.hotfolder]
        # Entries meant for readers only stay out of the inbox (and a loop's other link).
        for name in {*(e.name for e in written if not e.hotfolder), "loop-b.stl"}:
            path = inbox / name
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                path.rmdir()
        (inbox / "good.stl").write_bytes(tetra_stl_bytes(3))
        outside_before = sorted(p.name for p in (tmp_path / "outside").iterdir())

        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr

        failed, finished = inbox / "failed", inbox / "done"
        assert (finished / "good.stl").exists(), done.stderr[-3000:]
        wrong: list[str] = []
        for entry in entries:
            if entry.name == "case-loop":
                notes = list((failed / "case-loop").glob("*.error.txt"))
                text = "".join(n.read_text(encoding="utf-8") for n in notes)
            else:
                moved = failed / entry.name
                note = failed / (entry.name + ".error.txt")
                if not (moved.exists() or moved.is_symlink()) or not note.exists():
                    wrong.append(f"{entry.name}: not in failed/ with a note")
                    continue
                text = note.read_text(encoding="utf-8", errors="replace")
            expect = entry.hot_expect or entry.expect
            if not re.search(expect, text):
                wrong.append(f"{entry.name}: note does not match {expect!r}: {text[:300]}")
            if "wait until" in text:
                wrong.append(f"{entry.name}: false advice to wait")
        assert not wrong, "\n".join(wrong)
        # Nothing lost: every file dropped is in done/ or failed/, and the inbox is empty.
        left = [p.name for p in inbox.iterdir() if p.name not in ("done", "failed",
                                                                  "processing")]
        assert left == []
        assert len(every_file(failed)) + len(every_file(finished)) >= len(entries) + 1
        # The link's target was never moved or changed.
        assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == outside_before


class TestHostileSidecars:
    """A sidecar with a value YAML or JSON parses but Python cannot build fails its own case,
    with a note saying which value; the daemon goes on (it used to exit 70). So does each of
    the hostile YAML corpus's files as a sidecar (an alias bomb, a key twice, a NUL, Latin-1)."""

    def test_each_case_fails_alone_and_a_good_file_still_prints(self, tmp_path: Path) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        digits = "9" * (sys.get_int_max_str_digits() + 1)
        sidecars = {
            "no-such-day.yaml": ("due_date: 2024-02-30\n",
                                 r"no-such-day.yaml:1:11: \$: '2024-02-30' cannot be read as a "
                                 r"date \(day is out of range for month\)"),
            "long-yaml.yaml": (f"priority: {digits}\n",
                               r"long-yaml.yaml:1:11: \$: .*cannot be read as an integer "
                               r"\(over \d+ digits\)"),
            "long-json.json": (f'{{"priority": {digits}}}\n',
                               r"not valid JSON: a number has over \d+ digits"),
        }
        hostile = tmp_path / "hostile-yaml"
        raw = {name: (text.encode(), says) for name, (text, says) in sidecars.items()}
        raw.update({entry.name: ((hostile / entry.name).read_bytes(), entry.expect)
                    for entry in write_yaml_corpus(hostile)})
        for seed, (name, (data, _)) in enumerate(raw.items()):
            (inbox / name).write_bytes(data)
            (inbox / name).with_suffix(".stl").write_bytes(tetra_stl_bytes(seed))
        (inbox / "good.stl").write_bytes(tetra_stl_bytes(99))

        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr and "unexpected failure" not in done.stderr
        assert (inbox / "done" / "good.stl").exists()
        for name, (data, says) in raw.items():
            model = Path(name).with_suffix(".stl").name
            note = inbox / "failed" / (model + ".error.txt")
            assert re.search(says, note.read_text(encoding="utf-8")), name
            # The case is kept whole: the model and its sidecar, unchanged.
            assert (inbox / "failed" / name).read_bytes() == data
            assert (inbox / "failed" / model).exists()
        assert sorted(p.name for p in inbox.iterdir()) == ["done", "failed", "processing"]


class TestFilesTheAccountMayNotRead:
    """A file the hot folder's account may not read (its mode, its owner) goes to failed/
    with a note, its case whole with it; it stayed in the inbox for ever, said only in the
    log (``file_unreadable``, Python's words) at each look."""

    @pytest.mark.skipif(os.name != "posix", reason="on Windows a refusal is a copy's lock")
    def test_each_fails_with_a_note_and_the_rest_prints(self, tmp_path: Path) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        (inbox / "C-2").mkdir(parents=True)
        (inbox / "good.stl").write_bytes(tetra_stl_bytes(1))
        (inbox / "locked.stl").write_bytes(tetra_stl_bytes(2))
        (inbox / "C-2" / "upper.stl").write_bytes(tetra_stl_bytes(3))
        (inbox / "C-2" / "lower.stl").write_bytes(tetra_stl_bytes(4))
        for locked in (inbox / "locked.stl", inbox / "C-2" / "lower.stl"):
            locked.chmod(0)

        done = watch_once(settings, tmp_path, AS_A_USER)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (inbox / "done" / "good.stl").exists()
        failed = inbox / "failed"
        assert every_file(failed) == {"locked.stl", "C-2/upper.stl", "C-2/lower.stl"}
        for note in ("locked.stl", "C-2/lower.stl"):
            text = (failed / (note + ".error.txt")).read_text(encoding="utf-8")
            name = Path(note).name
            assert f"What failed: {name} cannot be read (Permission denied)" in text, text
            assert "give the account the hot folder runs as permission to read it" in text
        # The rest of its case is held with it (session 39: one rule for every bad part).
        text = (failed / "C-2" / "upper.stl.error.txt").read_text(encoding="utf-8")
        assert text.startswith("What failed: held with its case C-2: lower.stl cannot be "
                               "prepared, and a case prints whole or not at all\n"), text
        assert sorted(p.name for p in inbox.iterdir()) == ["done", "failed", "processing"]


class TestLongNames:
    """A name too long for its notes stays in the inbox, said in the log once; nothing
    crashes."""

    def test_they_wait_renamed_and_the_rest_prints_at_every_start(self, tmp_path: Path) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        (inbox / "case-7").mkdir(parents=True)
        longest = "w" * (MAX_NAME_BYTES - 4) + ".stl"  # taken: its notes still fit
        left = {
            "y" * (MAX_NAME_BYTES - 3) + ".stl": tetra_stl_bytes(1),
            "z" * 247 + ".stl": b"not a mesh",  # its note alone would be 261 bytes
            "case-7/" + "é" * 100 + ".stl": tetra_stl_bytes(2),  # 200 letters, 204 bytes
            "case-7/ok.stl": tetra_stl_bytes(3),
        }
        for name, data in {**left, longest: tetra_stl_bytes(4),
                           "good.stl": tetra_stl_bytes(5)}.items():
            (inbox / name).write_bytes(data)

        for start in (1, 2):
            done = watch_once(settings, tmp_path)
            assert done.returncode == 0, f"start {start}: {done.stderr[-3000:]}"
            assert "Traceback" not in done.stderr and "batch_crashed" not in done.stderr
            warned = re.findall(r"drop_name_too_long .*? name=(\S+)", done.stderr)
            # Said by the first start; the store remembers it, so the second says nothing.
            expected = sorted(Path(n).name for n in left if "ok" not in n) if start == 1 else []
            assert sorted(warned) == expected
            for name, data in left.items():
                assert (inbox / name).read_bytes() == data, name
        for name in (longest, "good.stl"):
            assert (inbox / "done" / (name + ".report.json")).exists(), name
        assert not list((inbox / "processing").iterdir())


class TestALongNameIsSaidOnce:
    """A running daemon says a name too long once per file, on its console and in its log,
    not at every rescan (session 25 logged it every ``rescan_interval_s``)."""

    def test_rescans_do_not_repeat_it(self, tmp_path: Path, in_process: InProcess) -> None:
        settings = quick_settings(tmp_path, hotfolders={"rescan_interval_s": 0.2})
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        long = "n" * (MAX_NAME_BYTES + 1) + ".stl"
        (inbox / long).write_bytes(tetra_stl_bytes(1))
        (inbox / "bad.stl").write_bytes(b"notes, not a mesh\n")
        out, err = tmp_path / "watch.out", tmp_path / "watch.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "preform_pipeline", "watch", str(settings),
                 "--log-level", "INFO"],
                env=environment(), cwd=tmp_path, stdout=stdout, stderr=stderr)
        try:
            failed = inbox / "failed" / "bad.stl"
            wait_for(failed.exists, RUNNING_S, what="bad.stl in failed/")
            # Each retry is batched again by a rescan's maintenance (job_requeued): two of
            # them mean the long name was looked at by at least two rescans after the first.
            # The retries run in the test's process: the daemon's rescans are under test.
            for count in (1, 2):
                retried = in_process(tmp_path, "jobs", "--settings", str(settings), "retry",
                                     job_key_of(tmp_path, "bad.stl"))
                assert retried.returncode == 0, retried.stdout + retried.stderr
                wait_for(lambda n=count: err.read_text().count("job_requeued") == n
                         and failed.exists(), RUNNING_S, what=f"retry {count} failed again")
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, err.read_text()[-3000:]
        logged = re.findall(r"drop_name_too_long .*? name=(\S+)", err.read_text())
        assert logged == [long]
        said = [line for line in out.read_text().splitlines() if "stays in the inbox" in line]
        assert said == [f"{inbox / long} stays in the inbox: its name is {MAX_NAME_BYTES + 5} "
                        f"bytes, over the {MAX_NAME_BYTES} a name may have; rename it to at "
                        f"most {MAX_NAME_BYTES} bytes (an accented or non-Latin letter takes 2 "
                        "to 4); it stays in the inbox until then"]
        assert (inbox / long).read_bytes() == tetra_stl_bytes(1)


def job_key_of(folder: Path, name: str) -> str:
    with SqliteJobStore(folder / "jobs.sqlite3") as store:
        return next(j.job_key for j in store.list_jobs() if j.source_path.name == name)


def taken_before_the_limit(settings_folder: Path, names: dict[str, bytes]) -> dict[str, str]:
    """Take files named over the limit as a daemon of before session 25 did (its intake never
    looked at a name's length); the first is then prepared, its build DONE, its file still in
    processing/ (that daemon failed writing its report there); the last is FAILED there.
    Their job keys, by name."""
    inbox = settings_folder / "inbox"
    inbox.mkdir(exist_ok=True)
    place = InboxSettings(path=inbox, recipe=settings_folder / "hot.yaml")
    keys: dict[str, str] = {}
    with SqliteJobStore(settings_folder / "jobs.sqlite3") as store:
        intake = Intake(store, [place])
        for name, data in names.items():
            (inbox / name).write_bytes(data)
            taken = intake.take(Drop(place, inbox / name, "hot", False,
                                     models=(inbox / name,))).taken
            keys[name] = taken[0].job_key
        first = store.find_by_key(keys[next(iter(names))])
        assert first is not None
        build = store.create_build(recipe="hot", job_ids=[first.id])
        store.transition_build(build.id, JobState.PREPARING, "preparing")
        store.transition_build(build.id, JobState.DONE, "prepared")
        last = store.find_by_key(keys[list(names)[-1]])
        assert last is not None
        store.transition(last.id, JobState.FAILED, "its batch crashed")
    return keys


class TestLongNamesAStoreTookBefore:
    """Jobs for names over the limit that a store took before such names were left in the
    inbox settle under a shorter name, said once, and the daemon goes on (every start of
    it used to exit 70 in recovery)."""

    def test_they_settle_under_a_shorter_name_and_the_next_start_is_quiet(
        self, tmp_path: Path
    ) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        prepared, waiting, failed = ("p" * 240 + ".stl", "q" * 247 + ".stl",
                                     "é" * 110 + ".stl")
        files = {prepared: tetra_stl_bytes(1), waiting: tetra_stl_bytes(2),
                 failed: tetra_stl_bytes(4)}
        keys = taken_before_the_limit(tmp_path, files)
        (inbox / "good.stl").write_bytes(tetra_stl_bytes(3))

        said: list[str] = []
        for start in (1, 2):
            done = watch_once(settings, tmp_path)
            assert done.returncode == 0, f"start {start}: {done.stderr[-3000:]}"
            assert "Traceback" not in done.stderr and "batch_crashed" not in done.stderr
            said += re.findall(r"file_settled_under_shorter_name .*? job_key=(\S+)",
                               done.stderr)
        assert sorted(said) == sorted(keys.values())  # once each, in the first start
        assert (inbox / "done" / "good.stl.report.json").exists()
        short = "é" * 97 + "~.stl"  # 194 + 5 bytes: a letter is not cut in two
        assert (inbox / "failed" / short).read_bytes() == files.pop(failed)
        note = (inbox / "failed" / (short + ".error.txt")).read_text(encoding="utf-8")
        assert f"File: {failed}\n" in note and f"Job: {keys[failed]} " in note
        assert "Name: a name in its path is over the 200 bytes a name may have" in note
        for name, data in files.items():
            short = name[:MAX_NAME_BYTES - 5] + "~.stl"
            assert (inbox / "done" / short).read_bytes() == data, name
            report = json.loads((inbox / "done" / (short + ".report.json")).read_text(
                encoding="utf-8"))
            assert report["job_key"] == keys[name]
            assert report["file"] == name and report["state"] == "done"
            assert "kept here under a shorter name ending in '~'" in report["name_cut"]
        assert not list((inbox / "processing").iterdir())
        assert sorted(p.name for p in inbox.iterdir()) == ["done", "failed", "processing"]


class TestNamesWithLineBreaks:
    """A file named with a newline or a carriage return (POSIX allows both) is refused with
    a note whose every line still starts with its label."""

    def test_each_note_keeps_its_lines(self, tmp_path: Path) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        names = ("two\nlines.stl", "carriage\rreturn.stl")
        for name in names:  # different contents: the second is no duplicate of the first
            (inbox / name).write_bytes(f"notes on {name!r}, not a mesh\n".encode())
        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        labels = ("What failed: ", "Where: ", "File: ", "Job: ", "What to do: ")
        for name in names:
            note = (inbox / "failed" / (name + ".error.txt")).read_bytes().decode("utf-8")
            lines = note.split("\n")[:-1]
            assert all(line.startswith(labels) for line in lines), repr(note)
            assert "\r" not in note
            shown = name.replace("\n", "\\n").replace("\r", "\\r")
            assert f"File: {shown}" in note or f"/{shown}" in note, repr(note)
            assert "text file that is not an STL" in note
            kept = (inbox / "failed" / name).read_bytes()
            assert kept == f"notes on {name!r}, not a mesh\n".encode()


#: Characters a terminal obeys: ESC starts a command (CSI, OSC), BEL ends an OSC, CSI's
#: one-byte form; written raw to a console they clear it, retitle the window, hide lines.
TERMINAL_COMMANDS = ("\x1b", "\x07", "\x9b")


class TestNamesWithTerminalEscapes:
    """A file named with a terminal's escape sequences is refused or printed like any other,
    and every console line, note and ``jobs`` line shows the sequence as escapes."""

    def test_no_line_a_person_reads_carries_them(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        refused = "a\x1b]0;owned\x07\x1b[2Jb.stl"  # retitles the window, clears the screen
        printed = "c\x9b31md.stl"
        (inbox / refused).write_bytes(b"notes about the part, not a mesh\n")
        (inbox / printed).write_bytes(tetra_stl_bytes(3))

        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "a\\x1b]0;owned\\x07\\x1b[2Jb.stl" in done.stderr  # the refusal, logged
        assert not [c for c in TERMINAL_COMMANDS if c in done.stderr + done.stdout]
        assert (inbox / "done" / printed).read_bytes() == tetra_stl_bytes(3)
        assert (inbox / "failed" / refused).read_bytes() == b"notes about the part, not a mesh\n"
        note = (inbox / "failed" / (refused + ".error.txt")).read_text(encoding="utf-8")
        assert "File: a\\x1b]0;owned\\x07\\x1b[2Jb.stl\n" in note
        assert not [c for c in TERMINAL_COMMANDS if c in note]

        # The ``jobs`` lines in the test's process, their streams captured at the file
        # descriptors (what a terminal would be sent): what they write is under test here,
        # not a process's start (the watch above is a real process).
        store = str(tmp_path / "jobs.sqlite3")
        for command in (("jobs", "--store", store), ("jobs", "--store", store, "show", "1"),
                        ("jobs", "--store", store, "show", "2")):
            shown = in_process(tmp_path, *command)
            assert shown.returncode == 0, shown.stderr
            assert "\\x1b" in shown.stdout or "\\x9b" in shown.stdout, shown.stdout
            assert not [c for c in TERMINAL_COMMANDS if c in shown.stdout + shown.stderr]


class TestByteOrderMarks:
    """Models saved "UTF-8 with BOM" by a Windows editor are taken, prepared and reported
    like any other: the judge sees them whole, the reader reads past the mark."""

    def test_an_ascii_stl_and_an_obj_with_the_mark_end_in_done(self, tmp_path: Path) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        plain = tmp_path / "plain.stl"
        write_stl(plain, tetra(), ascii=True)
        marked = {
            "notepad.stl": b"\xef\xbb\xbf" + plain.read_bytes(),
            "notepad.obj": b"\xef\xbb\xbfv 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\n"
                           b"f 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n",
        }
        for name, data in marked.items():
            (inbox / name).write_bytes(data)

        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not list((inbox / "failed").glob("*")), [
            n.read_text(encoding="utf-8") for n in (inbox / "failed").glob("*.txt")]
        for name, data in marked.items():
            assert (inbox / "done" / name).read_bytes() == data, name
            report = json.loads((inbox / "done" / (name + ".report.json")).read_text(
                encoding="utf-8"))
            assert report["state"] == "done", report
            assert report["outcome"]["status"] == "succeeded", report


class TestNotesAndValuesNoStoreHolds:
    """Session 31: a note-named file nested a million deep ended the daemon (exit 70 at
    every start, its batch stuck in processing/), and a sidecar text holding a NUL, which a
    PostgreSQL store cannot hold, was taken on SQLite. Each now fails alone, said why."""

    def test_the_daemon_goes_on_and_each_fails_alone(self, tmp_path: Path) -> None:
        settings = quick_settings(tmp_path)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        nested = "[" * 500_000 + "]" * 500_000  # under the note reader's 1 MiB
        (inbox / "a.stl").write_bytes(tetra_stl_bytes(1))
        (inbox / "a.stl.report.json").write_text(nested, encoding="utf-8")
        (inbox / "b.stl").write_bytes(tetra_stl_bytes(2))
        (inbox / "b.json").write_text('{"case_id": "C-\\u00007"}', encoding="utf-8")
        # Half a character (session 32): neither store can write it; the daemon ended (70).
        (inbox / "c.stl").write_bytes(tetra_stl_bytes(4))
        (inbox / "c.json").write_text('{"case_id": "C-\\ud8007"}', encoding="utf-8")
        (inbox / "good.stl").write_bytes(tetra_stl_bytes(3))

        done = watch_once(settings, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "unexpected failure" not in done.stderr
        assert (inbox / "done" / "a.stl").exists() and (inbox / "done" / "good.stl").exists()
        # The user's file is kept as it was, beside a note of its own.
        assert (inbox / "failed" / "a.stl.report.json").read_text(encoding="utf-8") == nested
        assert (inbox / "failed" / "a.stl.report.json.error.txt").exists()
        note = (inbox / "failed" / "b.stl.error.txt").read_text(encoding="utf-8")
        assert "case_id: holds a NUL character, which no text may hold" in note
        assert (inbox / "failed" / "b.json").exists() and (inbox / "failed" / "b.stl").exists()
        note = (inbox / "failed" / "c.stl.error.txt").read_text(encoding="utf-8")
        assert "case_id: holds a lone surrogate escape" in note
        assert (inbox / "failed" / "c.json").exists() and (inbox / "failed" / "c.stl").exists()
        assert sorted(p.name for p in inbox.iterdir()) == ["done", "failed", "processing"]
        assert not any((inbox / "processing").iterdir())
