"""``jobs show`` on hot-folder jobs, as a user meets them: a case fails, is fixed and put back.

Real subprocesses of ``python -m preform_pipeline watch --once`` on the embedded simulator take
the case; ``jobs show``, a read of the store that starts no server and takes no lock, runs in the
test's process (tests/command_line.py) with the same environment; files moved by hand, as
docs/hotfolder.md says to retry a failed case.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.command_line import InProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180.0
MODEL = REPO_ROOT / "sample_models" / "parts" / "l_bracket.stl"


class Farm:
    """A settings file with one inbox and a store of its own, and the commands a user types."""

    def __init__(self, root: Path, in_process: InProcess) -> None:
        self.root = root
        self._in_process = in_process
        self.inbox = root / "inbox"
        self.inbox.mkdir()
        recipe = root / "recipe.yaml"  # a copy, so its outputs land under the test's folder
        shutil.copyfile(REPO_ROOT / "recipes" / "engineering-grey-form4.yaml", recipe)
        self.settings = root / "settings.yaml"
        self.settings.write_text(
            f"store:\n  path: {root / 'jobs.sqlite3'}\n"
            f"hotfolders:\n  inboxes:\n    - path: {self.inbox}\n      recipe: {recipe}\n"
            "      quiet_period_s: 0.05\n",
            encoding="utf-8")

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFORM_PIPELINE_", "XDG_"))}
        env["HOME"] = str(self.root)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        done = subprocess.run([sys.executable, "-m", "preform_pipeline", *argv], cwd=self.root,
                              env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def jobs(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """``jobs --settings <farm's> ARGV`` in the test's process, with :meth:`cli`'s
        environment (no XDG folders, the farm's root as home)."""
        with pytest.MonkeyPatch.context() as patch:
            for name in [k for k in os.environ if k.startswith("XDG_")]:
                patch.delenv(name)
            done = self._in_process(self.root, "jobs", "--settings", str(self.settings),
                                    *argv, env_extra={"HOME": str(self.root)})
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def watch_once(self) -> None:
        self.cli("watch", str(self.settings), "--once", "--dry-run")

    def show(self, what: str) -> dict[str, str]:
        """The label/value lines of ``jobs show`` for one job (of a case: its newest)."""
        out = self.jobs("show", what).stdout
        last = out.rsplit("\n\njob ", 1)[-1]
        head = last.split("\n\nhistory", 1)[0].splitlines()[2:]
        return {line[:12].strip(): line[12:] for line in head}

    def drop_case(self, sidecar: str) -> Path:
        case = self.root / "C-1042"
        case.mkdir()
        shutil.copyfile(MODEL, case / "upper.stl")
        (case / "C-1042.yaml").write_text(sidecar, encoding="utf-8")
        return case.rename(self.inbox / "C-1042")


def _key(farm: Farm) -> str:
    note = (farm.inbox / "failed" / "C-1042" / "upper.stl.error.txt").read_text(encoding="utf-8")
    return note.split("Job: ", 1)[1].split()[0]


class TestTheHotFoldersRecordIsShownInWords:
    """``jobs show`` says where the file was dropped and its sidecar, not the raw record."""

    def test_a_failed_case_shows_its_drop_its_sidecar_and_its_own_fields(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        farm = Farm(tmp_path, in_process)
        farm.drop_case("customer: ACME\npriorty: 2\n")
        farm.watch_once()
        out = farm.jobs("show", _key(farm)).stdout
        assert "_hotfolder" not in out and "inode" not in out and "{" not in out
        shown = farm.show(_key(farm))
        failed = farm.inbox / "failed" / "C-1042"
        assert shown["file"] == str(failed / "upper.stl")
        assert shown["dropped as"] == f"C-1042/upper.stl in {farm.inbox}"
        assert shown["sidecar"] == str(failed / "C-1042.yaml")


class TestACasePutBackIsShownWhereItIs:
    """After a failed case is put back into the inbox, the old job says where its file went."""

    def test_put_back_and_then_taken_again(self, tmp_path: Path, in_process: InProcess) -> None:
        farm = Farm(tmp_path, in_process)
        farm.drop_case("priorty: 2\n")
        farm.watch_once()
        key = _key(farm)
        failed = farm.inbox / "failed" / "C-1042"
        back = failed.rename(farm.inbox / "C-1042")
        (back / "upper.stl.error.txt").unlink()
        (back / "C-1042.yaml").write_text("priority: 2\n", encoding="utf-8")
        shown = farm.show(key)
        assert shown["file"] == (
            f"{failed / 'upper.stl'}: not there now; put back into the inbox as "
            f"{back / 'upper.stl'}, not taken yet")
        farm.watch_once()
        shown = farm.show(key)
        again = farm.show("C-1042")  # the case's newest job is shown last
        assert shown["file"].startswith(f"{failed / 'upper.stl'}: not there now; dropped again "
                                        "as job 2 PP-")
        assert shown["file"].endswith(" (done)")
        assert shown["sidecar"] == (
            f"{failed / 'C-1042.yaml'}: not there now; dropped again with its file")
        assert again["file"] == str(farm.inbox / "done" / "C-1042" / "upper.stl")
        assert again["fields"] == "priority=2"  # the fixed sidecar's, as plain values
