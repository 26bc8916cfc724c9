"""`plan` as a user runs it (a subprocess) on model files a tool of theirs may write: the
console shows the plan and the reasons, nothing of Python's own."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.geometry import write_stl
from tests.conftest import AS_A_USER, RECIPES
from tests.hostile_corpus import tetra

TIMEOUT_S = 120.0
#: Far longer than a run that starts no server takes (about 1 s), far shorter than for ever.
HANG_S = 60.0
TETRA_OBJ = b"v 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def plan(*models: Path, command: str = "plan", options: tuple[str, ...] = ()
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AS_A_USER, sys.executable, "-m", "preform_pipeline", command, *options,
         str(RECIPES / "engineering-grey-form4.yaml"), *map(str, models)],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )


class TestOddButReadable:
    """An OBJ that starts with a UTF-8 byte order mark is planned like any other."""

    def test_a_byte_order_mark_before_the_first_vertex(self, tmp_path: Path) -> None:
        model = tmp_path / "notepad.obj"
        model.write_bytes(b"\xef\xbb\xbf" + TETRA_OBJ)
        done = plan(model)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 model in 1 build, 0 rejected" in done.stdout


class TestCoordinatesBeyondSinglePrecision:
    """A coordinate too large for a float is refused in words, with no numpy warning."""

    def test_ascii_stl_and_obj(self, tmp_path: Path) -> None:
        stl = tmp_path / "far.stl"
        stl.write_text("solid far\n facet normal 0 0 1\n  outer loop\n   vertex 1e39 0 0\n"
                       "   vertex 1 0 0\n   vertex 0 1 0\n  endloop\n endfacet\nendsolid far\n",
                       encoding="ascii")
        obj = tmp_path / "far.obj"
        obj.write_bytes(TETRA_OBJ.replace(b"v 10 0 0", b"v 1e39 0 0"))
        done = plan(stl, obj)
        assert done.returncode == 1
        assert "far.stl: triangle 1 of 1 has a NaN or infinite coordinate (1 such triangle)" \
            in done.stdout
        assert "far.obj: triangle 1 of 4 has a NaN or infinite coordinate (3 such triangles)" \
            in done.stdout
        assert done.stderr == ""


class TestFoldersThatCannotBeRead:
    """A folder the user may not list is named as such; it was taken for an empty one."""

    def test_plan_and_run_name_each_such_folder(self, tmp_path: Path) -> None:
        (tmp_path / "ok.obj").write_bytes(TETRA_OBJ)
        locked, sub = tmp_path / "locked", tmp_path / "case" / "sub"
        for folder in (locked, sub):
            folder.mkdir(parents=True)
            (folder / "part.obj").write_bytes(TETRA_OBJ)
        (tmp_path / "case" / "other.obj").write_bytes(TETRA_OBJ)
        for folder in (locked, sub):
            folder.chmod(0)
        try:
            planned = plan(tmp_path / "ok.obj", locked, tmp_path / "case")
            alone = plan(locked, command="run",
                         options=("--dry-run", "--output", str(tmp_path / "out")))
        finally:
            for folder in (locked, sub):
                folder.chmod(0o755)
        assert planned.returncode == 1, planned.stdout + planned.stderr
        assert "2 models in 1 build, 2 rejected" in planned.stdout
        for folder in (locked, sub):
            assert (f"{folder}: is a folder that cannot be read (Permission denied) (check its "
                    "permissions)") in planned.stdout
        # `run` said "nothing to do: no complete model files in locked" and exited 0.
        assert alone.returncode == 1, alone.stdout + alone.stderr
        assert f"{locked}: is a folder that cannot be read (Permission denied)" in alone.stdout


class TestNamesWithTerminalEscapes:
    """A model named with a terminal's escape sequences is named with escapes."""

    def test_the_rejection_shows_them_escaped(self, tmp_path: Path) -> None:
        model = tmp_path / "a\x1b]0;owned\x07\x1b[2Jb\x9b1m.stl"
        model.write_bytes(b"notes about the part, not a mesh\n")
        done = plan(model)
        assert done.returncode == 1
        assert "a\\x1b]0;owned\\x07\\x1b[2Jb\\x9b1m.stl: this is a text file" in done.stdout
        assert not {"\x1b", "\x07", "\x9b"} & set(done.stdout + done.stderr), done.stdout

    def test_the_terminals_tables_show_them_escaped(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a terminal the plan is rich's tables, which pass ESC through as it comes."""
        monkeypatch.setenv("COLUMNS", "1000")  # no cell folds a name, however long tmp_path

        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        case = tmp_path / "C-\x1b[2J1"
        case.mkdir()
        write_stl(case / "upper\x9b1m.stl", tetra())
        bad = tmp_path / "a\x1b]0;owned\x07b.stl"
        bad.write_bytes(b"notes about the part, not a mesh\n")
        out, err = Terminal(), io.StringIO()
        code = run(["plan", str(RECIPES / "engineering-grey-form4.yaml"), str(case), str(bad)],
                   out, err)
        assert code == 1
        shown = out.getvalue()
        for escaped in ("C-\\x1b[2J1", "upper\\x9b1m.stl", "a\\x1b]0;owned\\x07b.stl"):
            assert escaped in shown, shown
        # rich's own styles start with ESC [ and a digit; nothing else may.
        assert "\x1b]" not in shown and "\x1b[2J" not in shown and "\x9b" not in shown

    def test_run_shows_them_escaped(self, tmp_path: Path) -> None:
        bad = tmp_path / "a\x1b]0;owned\x07b.stl"
        bad.write_bytes(b"notes about the part, not a mesh\n")
        os.utime(bad, (1e9, 1e9))  # long since written: taken, and refused
        fresh = tmp_path / "c\x9b1md.stl"  # just written: not taken yet, however slow the start
        fresh.write_bytes(b"solid c\n")
        settings = tmp_path / "settings.yaml"
        settings.write_text("run: {quiet_period_s: 3600, incomplete_timeout_s: 3600}\n",
                            encoding="utf-8")
        options = ("--dry-run", "--output", str(tmp_path / "out"), "--settings", str(settings))
        done = plan(bad, fresh, command="run", options=options)
        quiet = plan(bad, command="run", options=(*options, "--quiet"))
        assert (done.returncode, quiet.returncode) == (1, 1), done.stdout + done.stderr
        assert "  a\\x1b]0;owned\\x07b.stl: this is a text file" in done.stdout.replace(
            str(tmp_path) + "/", "")
        assert "c\\x9b1md.stl: still being written" in done.stdout
        assert "rejected: " in quiet.stderr and "a\\x1b]0;owned\\x07b.stl" in quiet.stderr
        for text in (done.stdout, done.stderr, quiet.stdout, quiet.stderr):
            assert not {"\x1b", "\x07", "\x9b"} & set(text), text


class TestANameThatIsNotText:
    """A model whose name is not UTF-8 (POSIX names are bytes) is rejected by `run` saying
    what to do, and the file stays. It was sent to the server, failed its build with
    "'utf-8' codec can't encode character '\\udce9'", and the CSV report then ended the run
    with exit 70; its rejection line ended a run whose console is strict UTF-8 too."""

    @pytest.mark.skipif(os.name != "posix", reason="only POSIX names can be bytes")
    def test_run_rejects_it_and_reports_it(self, tmp_path: Path) -> None:
        folder = tmp_path / "models"
        folder.mkdir()
        model = folder / os.fsdecode(b"caf\xe9.stl")
        write_stl(model, tetra())
        os.utime(model, (1e9, 1e9))  # long since written: taken now
        kept = model.read_bytes()
        home = tmp_path / "home"
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
               "PYTHONIOENCODING": "utf-8"}  # strict: half a character cannot be printed
        done = subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "run", "--dry-run", "--output",
             str(tmp_path / "out"), str(RECIPES / "engineering-grey-form4.yaml"), str(folder)],
            capture_output=True, text=True, timeout=TIMEOUT_S, check=False, env=env,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "unexpected failure" not in done.stderr
        said = (r"caf\xe9.stl: its name is not valid UTF-8 text, so the job store cannot "
                "record it; rename it")
        assert said in done.stdout
        assert model.read_bytes() == kept
        (report,) = (tmp_path / "out" / "reports").glob("*.csv")
        assert said in report.read_text(encoding="utf-8")


class TestEntriesThatAreNoFiles:
    """`run` over a folder names each entry called like a model that is no file it can read,
    with its reason, and hangs on none. A named pipe called ``x.3mf`` held `run` for ever
    (judging its completeness opened it, and a pipe blocks until a writer comes); pipes,
    devices and links to nothing or to themselves were passed over in silence (exit 0); a
    file the account may not read was "still being written" at every run; a link to
    nothing was "file not found"."""

    @pytest.mark.skipif(os.name != "posix", reason="named pipes, devices and modes are POSIX")
    def test_run_rejects_each_with_its_reason(self, tmp_path: Path) -> None:
        folder = tmp_path / "models"
        folder.mkdir()
        os.mkfifo(folder / "pipe.3mf")
        os.mkfifo(folder / "pipe.stl")
        (folder / "zero.stl").symlink_to("/dev/zero")
        (folder / "loop-a.obj").symlink_to(folder / "loop-b.obj")
        (folder / "loop-b.obj").symlink_to(folder / "loop-a.obj")
        (folder / "gone.stl").symlink_to(tmp_path / "nothing.stl")
        locked = folder / "locked.stl"
        write_stl(locked, tetra())
        locked.chmod(0)
        home = tmp_path / "home"
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
        done = subprocess.run(
            [*AS_A_USER, sys.executable, "-m", "preform_pipeline", "run", "--dry-run",
             "--output", str(tmp_path / "out"), str(RECIPES / "engineering-grey-form4.yaml"),
             str(folder)],
            capture_output=True, text=True, timeout=HANG_S, check=False, env=env,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        said = done.stdout.replace(str(folder) + "/", "")
        assert "rejected 7 models:" in said, said
        regular = "is not a regular file (a device, pipe or socket)"
        for line in (f"pipe.3mf: {regular}", f"pipe.stl: {regular}", f"zero.stl: {regular}",
                     "loop-a.obj: cannot be read (Too many levels of symbolic links)",
                     "loop-b.obj: cannot be read (Too many levels of symbolic links)",
                     f"gone.stl: is a link to {tmp_path / 'nothing.stl'}, which is not there"):
            assert f"  {line}" in said, said
        assert "  locked.stl: cannot be read (Permission denied)" in said, said  # as a user
        assert "still being written" not in said
