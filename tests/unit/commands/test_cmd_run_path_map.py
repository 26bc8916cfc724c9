"""``run`` and ``watch`` with a remote server whose path map does not reach the output
folder: refused before any server is asked, any job recorded or any file taken, naming the
folder, the server and what helps.

Session 35's trial: `--output` outside the mapped share made every build fail on its first
save, naming a checkpoint file the user never chose, with advice to "move the file".
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.servers import refuse_unreached
from preform_pipeline.settings import PathMapping, PoolSettings, RemoteServer, ServerSettings
from tests.command_line import InProcess

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "engineering-grey-form4.yaml"


@pytest.fixture
def printhost() -> Iterator[socket.socket]:
    """A loopback port standing for the remote server: the test sees whether it was called."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    yield listener
    listener.close()


def _settings(folder: Path, share: Path, port: int) -> Path:
    path = folder / "settings.yaml"
    # Without the check the run would wait for the silent port: retire it at once instead,
    # so the test fails on what the run says, not on its time limit.
    path.write_text(
        "servers: {remote_wait_s: 0, max_restarts: 0, health_timeout_s: 0.5}\n"
        "remotes:\n"
        f"  - url: http://127.0.0.1:{port}\n"
        "    name: printhost\n"
        f"    path_map: {{{share}: 'Z:\\'}}\n",
        encoding="utf-8",
    )
    return path


class TestAnOutputFolderNoServerReaches:
    """The output folder is checked against every server's path map before anything runs."""

    def test_the_run_is_refused_before_any_server_or_job(
        self, tmp_path: Path, sample_models_dir: Path, in_process: InProcess,
        printhost: socket.socket,
    ) -> None:
        share = tmp_path / "share"
        share.mkdir()
        shutil.copy(sample_models_dir / "parts" / "cube_with_hole.stl", share)
        settings = _settings(tmp_path, share, printhost.getsockname()[1])
        out, store = tmp_path / "out-local", tmp_path / "jobs.sqlite3"

        done = in_process(tmp_path, "run", str(RECIPE), str(share), "--settings", str(settings),
                          "--output", str(out), "--store", str(store))

        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [
            f"error: the output folder {out} is not inside any folder mapped for server "
            f"printhost ({share}): the server saves the .form files, screenshots and "
            "checkpoints there (choose another --output (or add a path_map entry for it))",
            f"{RECIPE}: nothing was run",
        ]
        assert "Traceback" not in done.stdout + done.stderr
        with pytest.raises(BlockingIOError):  # nobody knocked
            printhost.accept()
        # Refused before anything is written: no store (no job left in flight for the next
        # run to skip or release), no output folder.
        assert not store.exists()
        assert not out.exists()


class TestAHotFolderWhoseOutputNoServerReaches:
    """``watch`` refuses to start: otherwise each batch failed at its first save and took its
    cases to failed/ (session 35's trial, with the same checkpoint message)."""

    def test_the_daemon_does_not_start_and_takes_no_file(
        self, tmp_path: Path, sample_models_dir: Path, in_process: InProcess,
        printhost: socket.socket,
    ) -> None:
        share = tmp_path / "share"
        inbox = share / "inbox"
        inbox.mkdir(parents=True)
        shutil.copy(sample_models_dir / "parts" / "cube_with_hole.stl", inbox)
        out, store = tmp_path / "out", tmp_path / "jobs.sqlite3"
        settings = _settings(tmp_path, share, printhost.getsockname()[1])
        with settings.open("a", encoding="utf-8") as text:
            text.write(f"store: {{path: {store}}}\n"
                       f"hotfolders:\n  inboxes:\n    - path: {inbox}\n"
                       f"      recipe: {RECIPE}\n  output_root: {out}\n")

        done = in_process(tmp_path, "watch", str(settings), "--once")

        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.splitlines() == [
            f"error: the output folder (hotfolders.output_root) {out} is not inside any "
            f"folder mapped for server printhost ({share}): the server saves the .form "
            "files, screenshots and checkpoints there (set hotfolders.output_root below a "
            "mapped folder, or add a path_map entry for it)",
        ]
        assert done.stdout == ""
        with pytest.raises(BlockingIOError):
            printhost.accept()
        assert sorted(p.name for p in inbox.iterdir()) == ["cube_with_hole.stl"]
        assert not store.exists() and not out.exists()


class TestThePoolsCheck:
    """``refuse_unreached`` passes a folder every server's map reaches and names the first
    server whose map does not, as the pool names it."""

    def test_inside_passes_outside_names_the_server_and_its_folders(self) -> None:
        share = PathMapping(PurePosixPath("/mnt/share"), "Z:\\")
        remote = RemoteServer("http://127.0.0.1:9", path_map=(share,), name="printhost")
        settings = PoolSettings(remotes=(remote,))
        refuse_unreached(settings, Path("/mnt/share/out"), what="output folder", hint="h")
        with pytest.raises(ConfigError) as caught:
            refuse_unreached(settings, Path("/mnt/share2/out"), what="output folder", hint="h")
        assert str(caught.value) == (
            "the output folder /mnt/share2/out is not inside any folder mapped for server "
            "printhost (/mnt/share): the server saves the .form files, screenshots and "
            "checkpoints there (h)")

    def test_local_servers_are_checked_by_their_own_map(self) -> None:
        share = PathMapping(PurePosixPath("/"), "Z:\\")
        remote = RemoteServer("http://127.0.0.1:9", path_map=(), name="printhost")
        settings = PoolSettings(servers=ServerSettings(executable=Path("/opt/PreFormServer"),
                                                       path_map=(share,)),
                                remotes=(remote,))
        refuse_unreached(settings, Path("/anywhere/out"), what="output folder", hint="h")
        narrow = replace(settings, servers=replace(
            settings.servers, path_map=(PathMapping(PurePosixPath("/srv"), "Z:\\"),)))
        with pytest.raises(ConfigError, match="mapped for server server-1 \\(/srv\\)"):
            refuse_unreached(narrow, Path("/anywhere/out"), what="output folder", hint="h")
