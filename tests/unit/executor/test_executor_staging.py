"""Where servers write our outputs: a staging folder per process, moved into place after."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import (
    WRITE_HINTS,
    FileWriteError,
    ServerUnreachableError,
    refused_by_a_full_disk,
)
from preform_pipeline.executor import staging
from preform_pipeline.executor.outputs import create_empty
from preform_pipeline.executor.staging import (
    owner_of,
    process_folder_name,
    remove_empty_staging,
    save_staged,
    sweep_staging,
)
from preform_pipeline.liveness import ProcessIdentity, this_host
from preform_pipeline.outputfolders import STAGING_FOLDER
from tests.instances import other_instance
from tests.small_disk import mounted_small_disk
from tests.staging_support import SERVER_TEMPORARY, Saver


def everything_below(root: Path) -> list[str]:
    """Every file and folder below ``root``, as relative POSIX paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


@pytest.fixture
def savers(root: Path) -> Iterator[list[Saver]]:
    started: list[Saver] = []
    yield started
    for saver in started:
        saver.stop()


@pytest.fixture
def killed(root: Path, savers: list[Saver]) -> Saver:
    """A process of this host killed in the middle of a save below ``root``."""
    saver = Saver(root)
    savers.append(saver)
    saver.kill()
    return saver


def writing(data: bytes) -> Callable[[Path], None]:
    """A server's save that writes ``data`` whole."""
    return lambda path: path.write_bytes(data)


class TestStagedSave:
    """A save is written in this process's staging folder and placed at a free name."""

    def test_the_saved_file_takes_its_name_and_nothing_else_is_left(self, root: Path) -> None:
        seen: list[Path] = []

        def write(path: Path) -> None:
            seen.append(path)
            path.write_bytes(b"the whole form")

        final = save_staged(root / "2026-12-06" / "e2e-001.form", root, write)
        assert final == root / "2026-12-06" / "e2e-001.form"
        assert seen[0].name == final.name
        assert seen[0].parent.parent == root / STAGING_FOLDER
        assert final.read_bytes() == b"the whole form"
        assert everything_below(root) == ["2026-12-06", "2026-12-06/e2e-001.form"]

    def test_a_name_taken_meanwhile_gets_the_next_free_one_and_stays_as_it_was(
        self, root: Path
    ) -> None:
        def write(path: Path) -> None:
            (root / "e2e-001.form").write_bytes(b"another run's, placed while we saved")
            path.write_bytes(b"ours")

        assert save_staged(root / "e2e-001.form", root, write) == root / "e2e-001-2.form"
        assert (root / "e2e-001.form").read_bytes() == b"another run's, placed while we saved"
        assert (root / "e2e-001-2.form").read_bytes() == b"ours"

    def test_a_server_that_dies_mid_save_leaves_nothing_in_the_output_folder(
        self, root: Path
    ) -> None:
        def dies(path: Path) -> None:
            (path.parent / SERVER_TEMPORARY.format(name=path.name)).write_bytes(b"PK cut")
            raise ServerUnreachableError("server-1 went away")

        with pytest.raises(ServerUnreachableError):
            save_staged(root / "e2e-001.form", root, dies)
        assert everything_below(root) == []  # no name taken, nothing staged

    def test_a_server_that_says_saved_but_wrote_nothing_is_a_clear_error(
        self, root: Path
    ) -> None:
        final = root / "e2e-001.png"
        with pytest.raises(FileWriteError) as caught:
            save_staged(final, root, lambda path: None)
        assert caught.value.path == final
        assert caught.value.reason == (
            "the server answered that it saved the file, but the file is not there"
        )
        assert caught.value.hint == ("check the server's log, and that nothing removes files "
                                     "from .preform-staging in the output folder")
        assert everything_below(root) == []

    def test_staging_removed_by_someone_mid_save_is_the_same_clear_error(
        self, root: Path
    ) -> None:
        def write(path: Path) -> None:
            path.write_bytes(b"whole")
            shutil.rmtree(root / STAGING_FOLDER)  # a person cleaning up by hand

        with pytest.raises(FileWriteError, match="the file is not there"):
            save_staged(root / "e2e-001.form", root, write)
        assert everything_below(root) == []

    def test_a_file_where_the_output_s_folder_goes_is_said_and_nothing_is_left(
        self, root: Path
    ) -> None:
        (root / "2026-12-06").write_text("a file of the user's", encoding="utf-8")
        final = root / "2026-12-06" / "e2e-001.form"
        with pytest.raises(FileWriteError) as caught:
            save_staged(final, root, writing(b"whole"))
        assert caught.value.path == final
        assert caught.value.reason == ("cannot move the saved file into place: a file stands "
                                       "where a folder of the path should be")
        assert caught.value.hint == ("check that the output's folder is a folder this user "
                                     "can write, on the same disk as the output folder")
        assert everything_below(root) == ["2026-12-06"]

    def test_a_folder_in_the_output_s_place_is_passed_over(self, root: Path) -> None:
        (root / "e2e-001.form").mkdir()
        assert save_staged(root / "e2e-001.form", root, writing(b"whole")) == (
            root / "e2e-001-2.form")
        assert everything_below(root) == ["e2e-001-2.form", "e2e-001.form"]

    def test_another_save_at_work_keeps_its_folder(self, root: Path) -> None:
        def first(path: Path) -> None:
            save_staged(root / "b.form", root, writing(b"b"))
            assert path.parent.is_dir()
            path.write_bytes(b"a")

        save_staged(root / "a.form", root, first)
        assert everything_below(root) == ["a.form", "b.form"]

    def test_a_run_s_saves_leave_the_staging_folder_to_the_run(self, root: Path) -> None:
        save_staged(root / "a.form", root, writing(b"a"), keep_staging=True)
        assert everything_below(root) == [STAGING_FOLDER, "a.form"]
        save_staged(root / "b.form", root, writing(b"b"), keep_staging=True)
        assert everything_below(root) == [STAGING_FOLDER, "a.form", "b.form"]

        remove_empty_staging(root)
        assert everything_below(root) == ["a.form", "b.form"]

    def test_the_run_s_end_leaves_a_staging_folder_another_save_is_using(
        self, root: Path
    ) -> None:
        def ends_meanwhile(path: Path) -> None:
            remove_empty_staging(root)
            path.write_bytes(b"whole")

        save_staged(root / "a.form", root, ends_meanwhile, keep_staging=True)
        assert everything_below(root) == [STAGING_FOLDER, "a.form"]

    def test_a_folder_that_cannot_be_made_says_so_and_names_the_output(
        self, root: Path
    ) -> None:
        (root / STAGING_FOLDER).write_text("a file where the folder goes", encoding="utf-8")
        with pytest.raises(FileWriteError, match="cannot make the folder") as caught:
            save_staged(root / "e2e-001.form", root, writing(b"never"))
        assert caught.value.path == root / "e2e-001.form"
        # The path said is the file in the way, not a name of ours inside a folder that is
        # not there; and what helps is moving that file, not a permission.
        assert caught.value.reason == ("cannot make the folder the server saves into: "
                                       f"[Errno {errno.ENOTDIR}] {os.strerror(errno.ENOTDIR)}: "
                                       f"'{root / STAGING_FOLDER}'")
        assert caught.value.hint == WRITE_HINTS[errno.ENOTDIR]
        assert caught.value.errno == errno.ENOTDIR
        assert (root / STAGING_FOLDER).read_text(encoding="utf-8") == (
            "a file where the folder goes")
        assert everything_below(root) == [STAGING_FOLDER]

    def test_a_folder_this_user_cannot_write_says_to_let_it(
        self, root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refused(candidate: Path) -> None:  # as a folder of another user's refuses
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(candidate))

        monkeypatch.setattr(staging, "create_empty", refused)
        with pytest.raises(FileWriteError, match="cannot make the folder") as caught:
            save_staged(root / "e2e-001.form", root, writing(b"never"))
        assert caught.value.hint == "let this user write to the output folder"
        assert caught.value.errno == errno.EACCES

    def test_a_folder_a_full_disk_refuses_says_the_disk_is_full(self, tmp_path: Path) -> None:
        # A disk with bytes to spare but no room for one more folder or file (its inodes
        # used up): ENOSPC, as a real disk full to the last block refuses a new folder.
        with mounted_small_disk(tmp_path / "disk", inodes=16) as disk:
            for n in range(16):
                try:
                    (disk.root / f"f{n}").touch()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
            else:
                pytest.fail("the disk took 16 files")
            with pytest.raises(FileWriteError, match="cannot make the folder") as caught:
                save_staged(disk.root / "e2e-001.form", disk.root, writing(b"never"))
        assert caught.value.hint == WRITE_HINTS[errno.ENOSPC]
        assert caught.value.errno == errno.ENOSPC and refused_by_a_full_disk(caught.value)

    def test_a_staging_folder_made_before_the_disk_refused_more_is_not_left(
        self, tmp_path: Path
    ) -> None:
        # One file left on the disk: .preform-staging is made, the save's owner file refused.
        with mounted_small_disk(tmp_path / "disk", inodes=16) as disk:
            disk.use_up_files()[-1].unlink()
            with pytest.raises(FileWriteError, match="cannot make the folder") as caught:
                save_staged(disk.root / "e2e-001.form", disk.root, writing(b"never"))
            assert caught.value.hint == WRITE_HINTS[errno.ENOSPC]
            assert not (disk.root / STAGING_FOLDER).exists()

    @pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
    def test_a_folder_that_can_never_be_made_ends_in_a_clear_error_not_a_loop(
        self, root: Path
    ) -> None:
        # A folder removed while still open: nothing can be made in it again (ENOENT every
        # time), the lasting form of a parent removed between two makings.
        gone = root / "gone"
        gone.mkdir()
        handle = os.open(gone, os.O_RDONLY)
        try:
            gone.rmdir()
            held = Path(f"/proc/self/fd/{handle}")
            with pytest.raises(FileWriteError, match="cannot make the folder") as caught:
                save_staged(held / "e2e-001.form", held, writing(b"never"))
            assert isinstance(caught.value.__cause__, FileNotFoundError)
        finally:
            os.close(handle)


def _saved_into_when_first_tried(root: Path, monkeypatch: pytest.MonkeyPatch,
                                 first: str) -> str:
    """The save folder a save below ``root`` gets when its first name tried is ``first``
    (the next is ``bbbbbbbb``)."""
    names = iter([first * 4, "b" * 32])
    monkeypatch.setattr(staging.uuid, "uuid4", lambda: type("U", (), {"hex": next(names)}))
    seen: list[Path] = []
    save_staged(root / "x.form", root, lambda path: (seen.append(path), path.write_bytes(b"x")))
    return seen[0].parent.name


class TestTheShortLayout:
    """A save's folder is 8 characters below ``.preform-staging`` (a Windows server's paths
    are short), its owner named by a file beside it while it exists."""

    def test_the_server_s_path_is_26_characters_longer_than_the_output_s(
        self, root: Path
    ) -> None:
        seen: list[Path] = []

        def write(path: Path) -> None:
            seen.append(path)
            me = process_folder_name(ProcessIdentity.current())
            assert (root / STAGING_FOLDER / f"{path.parent.name}.{me}").is_file()
            path.write_bytes(b"whole")

        save_staged(root / "e2e-001.form", root, write)
        assert len(str(seen[0])) - len(str(root / "e2e-001.form")) == len(
            f"/{STAGING_FOLDER}/12345678")
        assert everything_below(root) == ["e2e-001.form"]

    def test_a_name_another_save_has_is_tried_again_under_another(
        self, root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (root / STAGING_FOLDER / "aaaaaaaa").mkdir(parents=True)  # another's, or not ours
        assert _saved_into_when_first_tried(root, monkeypatch, "aaaaaaaa") == "bbbbbbbb"
        assert everything_below(root) == [STAGING_FOLDER, f"{STAGING_FOLDER}/aaaaaaaa",
                                          "x.form"]


class TestMakingASaveFolder:
    """The folder is made with what it needs above it, and a name that is taken is never
    taken over: tried again under another, five times at most."""

    def test_an_output_folder_not_made_yet_is_made(self, tmp_path: Path) -> None:
        root = tmp_path / "not" / "yet"
        assert save_staged(root / "x.form", root, writing(b"x")) == root / "x.form"

    def test_the_owner_file_is_an_ordinary_file(self, root: Path) -> None:
        umask = os.umask(0)
        os.umask(umask)
        me = process_folder_name(ProcessIdentity.current())

        def write(path: Path) -> None:
            owner = root / STAGING_FOLDER / f"{path.parent.name}.{me}"
            assert stat.S_IMODE(owner.stat().st_mode) == 0o644 & ~umask
            path.write_bytes(b"x")

        save_staged(root / "x.form", root, write)

    def test_an_owner_file_already_there_is_not_taken_over(
        self, root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        me = process_folder_name(ProcessIdentity.current())
        theirs = root / STAGING_FOLDER / f"aaaaaaaa.{me}"  # ours of an earlier save, cut short
        theirs.parent.mkdir()
        theirs.touch()
        assert _saved_into_when_first_tried(root, monkeypatch, "aaaaaaaa") == "bbbbbbbb"
        assert theirs.exists()

    def test_names_always_taken_end_after_five_tries_in_a_clear_error(
        self, root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (root / STAGING_FOLDER / "aaaaaaaa").mkdir(parents=True)
        tries: list[int] = []

        def same_name() -> object:
            tries.append(1)
            return type("U", (), {"hex": "a" * 32})

        monkeypatch.setattr(staging.uuid, "uuid4", same_name)
        with pytest.raises(FileWriteError, match=r"cannot make the folder the server saves "
                           r"into: .*File exists"):
            save_staged(root / "x.form", root, writing(b"never"))
        assert len(tries) == 5
        assert everything_below(root) == [STAGING_FOLDER, f"{STAGING_FOLDER}/aaaaaaaa"]

    def test_another_run_s_end_between_staging_s_making_and_the_owner_s_is_tried_again(
        self, root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Run A's end removes the empty `.preform-staging` the instant run B's save has found
        # it, and again once B has made it anew, each time before B's owner file is in it:
        # B makes it again, not a failed build.
        save_staged(root / "first.form", root, writing(b"x"), keep_staging=True)
        ends: list[Path] = []

        def after_another_run_s_end(candidate: Path) -> None:
            if len(ends) < 2:
                remove_empty_staging(root)
                ends.append(candidate)
            create_empty(candidate)

        monkeypatch.setattr(staging, "create_empty", after_another_run_s_end)
        assert save_staged(root / "x.form", root, writing(b"x"), keep_staging=True) == (
            root / "x.form")
        assert len(ends) == 2
        assert everything_below(root) == [STAGING_FOLDER, "first.form", "x.form"]

    def test_a_save_folder_that_cannot_be_removed_does_not_fail_the_save(
        self, root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(path: Path) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(staging.shutil, "rmtree", refuse)
        assert save_staged(root / "x.form", root, writing(b"x")) == root / "x.form"
        (left,) = (root / STAGING_FOLDER).glob("*.*")  # its owner still names the folder
        assert (root / STAGING_FOLDER / left.name.split(".", 1)[0]).is_dir()


class TestAProcessKilledMidSave:
    """A save cut off by a kill takes no name: the next save of the same output takes the
    name the killed one would have had (not ``-2`` beside an empty file)."""

    def test_the_next_save_takes_the_name(self, root: Path, savers: list[Saver]) -> None:
        killed = Saver(root, "e2e-001.form")
        savers.append(killed)
        killed.kill()
        assert not (root / "e2e-001.form").exists()
        assert save_staged(root / "e2e-001.form", root, writing(b"whole")) == (
            root / "e2e-001.form")


class TestAFileSystemWithoutHardLinks:
    """Where no hard link can be made (FAT, some shares, another user's file), the name is
    claimed and the file renamed over it: the same result, never over a file."""

    @pytest.fixture
    def no_links(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(source: object, target: object) -> None:
            raise PermissionError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", refuse)

    @pytest.mark.usefixtures("no_links")
    def test_the_file_is_placed_at_a_free_name(self, root: Path) -> None:
        (root / "e2e-001.form").write_bytes(b"yesterday's")
        final = save_staged(root / "e2e-001.form", root, writing(b"whole"))
        assert final == root / "e2e-001-2.form" and final.read_bytes() == b"whole"
        assert (root / "e2e-001.form").read_bytes() == b"yesterday's"
        assert everything_below(root) == ["e2e-001-2.form", "e2e-001.form"]

    @pytest.mark.usefixtures("no_links")
    def test_a_rename_that_fails_gives_the_name_back(self, root: Path) -> None:
        def write(path: Path) -> None:
            path.mkdir()  # a folder the server made: it cannot be renamed over a file

        with pytest.raises(FileWriteError, match="cannot move the saved file into place"):
            save_staged(root / "e2e-001.form", root, write)
        assert everything_below(root) == []


class TestFolderNames:
    """A staging folder names its process; only this host's names are read back."""

    def test_another_host_s_process_has_a_name_no_one_here_owns(self) -> None:
        elsewhere = ProcessIdentity(os.getpid(), psutil.Process().create_time(), "print-host-2")
        assert owner_of(process_folder_name(elsewhere)) is None

    def test_another_container_of_this_host_name_has_a_name_no_one_here_owns(self) -> None:
        # Same host name, another pid namespace: its pid 1234 is not our 1234, so its folder
        # must never be judged (and swept) by whether our 1234 runs.
        elsewhere = ProcessIdentity(os.getpid(), psutil.Process().create_time(), this_host(),
                                    instance="another-boot/4026531836")
        assert owner_of(process_folder_name(elsewhere)) is None

    def test_a_name_reads_back_as_its_process(self) -> None:
        me = ProcessIdentity.current()
        owner = owner_of(process_folder_name(me))
        assert owner is not None and me.matches(owner)

    @pytest.mark.parametrize("name", [
        "123-1796521545900-00000000",  # another host's tag (or a name of a kind not made here)
        "0-1796521545900-{tag}", "123-1796521545900", "notes", "123-x-{tag}", "123-1-{tag}-",
    ])
    def test_other_names_have_no_owner_here(self, name: str) -> None:
        tag = process_folder_name(ProcessIdentity.current()).rsplit("-", 1)[1]
        assert owner_of(name.format(tag=tag)) is None


class TestSweepAtStart:
    """The next run removes what a killed process staged, and nothing else."""

    def test_a_killed_process_s_folder_goes_with_what_its_server_left(
        self, root: Path, killed: Saver
    ) -> None:
        (root / "notes.txt").write_text("mine", encoding="utf-8")
        with capture_logs() as logs:
            assert sweep_staging(root) == (killed.folder,)
        assert everything_below(root) == ["notes.txt"]
        swept = [e for e in logs if e["event"] == "staging_swept"]
        assert swept == [{"event": "staging_swept", "log_level": "info",
                          "path": str(killed.folder), "pid": killed.process.pid}]

    def test_a_running_process_s_folder_stays(self, root: Path, savers: list[Saver]) -> None:
        live, killed = Saver(root), Saver(root)
        savers += [live, killed]
        killed.kill()
        assert sweep_staging(root) == (killed.folder,)
        assert live.temporary.is_file()
        assert not killed.folder.exists()

    def test_another_host_s_folder_and_names_not_ours_stay(self, root: Path) -> None:
        staging = root / STAGING_FOLDER
        others = [staging / "4242-1796521545900-00000000" / "f" / "x.form", staging / "mine.txt"]
        for path in others:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("kept", encoding="utf-8")
        assert sweep_staging(root) == ()
        assert all(path.read_text(encoding="utf-8") == "kept" for path in others)

    def test_a_folder_that_cannot_be_removed_is_logged_and_the_others_still_go(
        self, root: Path, killed: Saver
    ) -> None:
        # Sorted first: a file where a dead process's save folder would be (nothing of ours).
        process = killed.owner.name.split(".", 1)[1]
        blocked = root / STAGING_FOLDER / "00000000"
        blocked.write_text("not a folder", encoding="utf-8")
        (root / STAGING_FOLDER / f"00000000.{process}").touch()
        assert blocked.name < killed.folder.name
        with capture_logs() as logs:
            assert sweep_staging(root) == (killed.folder,)
        assert blocked.is_file() and (root / STAGING_FOLDER / f"00000000.{process}").exists()
        (warning,) = [e for e in logs if e["event"] == "staging_not_swept"]
        assert warning == {"event": "staging_not_swept", "log_level": "warning",
                           "path": str(blocked), "error": warning["error"]}
        assert str(blocked) in warning["error"]

    def test_a_save_cut_between_its_folder_s_removal_and_its_owner_s_is_finished(
        self, root: Path, killed: Saver
    ) -> None:
        shutil.rmtree(killed.folder)
        assert sweep_staging(root) == (killed.folder,)
        assert not (root / STAGING_FOLDER).exists()

    def test_a_folder_named_by_a_live_owner_too_stays(
        self, root: Path, killed: Saver
    ) -> None:
        me = process_folder_name(ProcessIdentity.current())
        also = root / STAGING_FOLDER / f"{killed.folder.name}.{me}"
        also.touch()  # two owners of one name: a start cut between its two makings
        assert sweep_staging(root) == ()
        assert killed.temporary.is_file() and killed.owner.exists() and also.exists()

    def test_a_folder_no_owner_names_and_another_container_s_stay(self, root: Path) -> None:
        me = ProcessIdentity.current()
        there = process_folder_name(ProcessIdentity(
            me.pid, me.create_time - 100.0, me.host, other_instance()))
        staging = root / STAGING_FOLDER
        for save in ("11111111", "22222222"):
            (staging / save).mkdir(parents=True)
            (staging / save / "x.form").write_bytes(b"kept")
        (staging / f"22222222.{there}").touch()
        assert sweep_staging(root) == ()
        assert len(everything_below(root)) == 6

    def test_a_process_folder_of_the_first_version_is_swept(self, root: Path) -> None:
        me = ProcessIdentity.current()
        dead = ProcessIdentity(me.pid, me.create_time - 100.0, me.host, me.instance)
        folder = root / STAGING_FOLDER / process_folder_name(dead)
        (folder / ("f" * 32)).mkdir(parents=True)
        (folder / ("f" * 32) / ".x.form.0123.tmp").write_bytes(b"half")
        assert sweep_staging(root) == (folder,)
        assert everything_below(root) == []

    def test_an_output_folder_without_staging_is_left_as_it_is(self, root: Path) -> None:
        (root / "a.form").write_bytes(b"a")
        assert sweep_staging(root) == ()
        assert sweep_staging(root / "not yet made") == ()
        assert everything_below(root) == ["a.form"]
