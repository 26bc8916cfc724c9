"""expand_user: a path a user wrote with ``~`` or ``~name`` expanded, or a ConfigError that says
which path, where it was written and what helps (never Python's RuntimeError)."""

from __future__ import annotations

import errno
import json
import os
import pwd
import subprocess
import sysconfig
from pathlib import Path

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import default_store_path
from preform_pipeline.userpath import expand_user, own_home, secret_file_named, unusable_path
from tests.another_user import OTHER_PYTHON, UNLISTED_UID

REPO_ROOT = Path(__file__).resolve().parents[2]


class TestExpanded:
    """Paths that name a known home, or none, come back as Python expands them."""

    def test_own_home_comes_from_home(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        assert expand_user("~/inbox", source="--store") == tmp_path / "inbox"

    def test_an_empty_home_is_not_the_root_folder(self, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
        # Python takes HOME="" for "/": the default data folder was /.local/share.
        listed = Path(pwd.getpwuid(os.getuid()).pw_dir)
        assert own_home({"HOME": ""}) == listed
        monkeypatch.setenv("HOME", "")
        assert expand_user("~/x", source="--output") == listed / "x"
        assert default_store_path(env={"HOME": ""}, platform="linux").is_relative_to(listed)

    def test_a_path_without_a_tilde_is_unchanged(self) -> None:
        assert expand_user(Path("out/x~1"), source="--output") == Path("out/x~1")


class TestNoSuchHome:
    """A home folder this machine cannot find is a ConfigError naming the path and its source."""

    def test_a_user_this_machine_lacks(self) -> None:
        with pytest.raises(ConfigError) as caught:
            expand_user("~0/jobs.db", source="--store")
        assert caught.value.message == "--store: '~0/jobs.db': no user named '0' on this machine"
        assert caught.value.hint == ("write the path in full, or start it with ~/ for your own "
                                     "home folder")
        assert caught.value.source == "--store"

    def test_a_settings_key_comes_before_the_path(self) -> None:
        with pytest.raises(ConfigError) as caught:
            expand_user("~nosuchuser38", source="s.yaml", key="$.store.path")
        assert caught.value.message == (
            "s.yaml: $.store.path: '~nosuchuser38': no user named 'nosuchuser38' on this machine")

    @pytest.mark.skipif(OTHER_PYTHON is None, reason="needs root and a Python any user may run")
    def test_own_home_unknown(self) -> None:
        # HOME unset and a user id the password database lacks (a bare container): Python
        # cannot expand ~ either. Only a real process of such a user shows it; this venv's
        # interpreter lives below /root, so the system's of the same version runs it.
        code = ("import json; from preform_pipeline.errors import ConfigError\n"
                "from preform_pipeline.userpath import expand_user\n"
                "try:\n    expand_user('~/x', source='--output')\n"
                "except ConfigError as exc:\n    print(json.dumps([str(exc)]))\n")
        path = os.pathsep.join([str(REPO_ROOT), sysconfig.get_paths()["purelib"]])
        done = subprocess.run(
            [str(OTHER_PYTHON), "-c", code], env={"PYTHONPATH": path}, cwd="/",
            user=UNLISTED_UID, group=UNLISTED_UID, extra_groups=[], capture_output=True,
            text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [
            f"environment variable HOME: no home folder is known for this user: HOME is not "
            f"set and the user database lists no user {UNLISTED_UID} (set HOME, or write the "
            "paths in full)"]


class TestASecretFilesName:
    """``--client-secret-file hunter2`` (the secret typed where its file's name belongs) was
    said back as the file that could not be read. A name is said only when it reads as a path;
    else its length and where it was looked for, and no part of it."""

    SECRET = "hunter2-s3cr3t"

    @pytest.mark.parametrize("written", [
        "/run/secrets/formlabs", "~/formlabs-secret", "./formlabs", "../formlabs",
        "client-secret.txt", "secrets/client_secret", "nowhere/client.key",
        # Session 43's mutation run: up a level into a folder that is not there (a moved lab
        # folder): "../" anchors it, as no folder found does.
        "../old-lab/formlabs",
    ])
    def test_a_name_that_reads_as_a_path_is_said_as_written(
        self, written: str, tmp_path: Path
    ) -> None:
        (tmp_path / "secrets").mkdir()

        assert secret_file_named(written, tmp_path / written) == written

    def test_a_name_in_a_folder_that_is_there_is_said(self, tmp_path: Path) -> None:
        (tmp_path / "secrets").mkdir()

        assert secret_file_named("secrets/clinet", tmp_path / "secrets/clinet") == (
            "secrets/clinet")

    def test_a_bare_name_at_which_something_is_is_said(self, tmp_path: Path) -> None:
        (tmp_path / "formlabs").mkdir()  # a folder: said, so the user sees what was read

        assert secret_file_named("formlabs", tmp_path / "formlabs") == "formlabs"

    @pytest.mark.parametrize("written", [SECRET, f"{SECRET}/aB3+x==", "p@ss.Word"])
    def test_what_may_be_the_secret_is_said_by_its_length_and_folder_only(
        self, written: str, tmp_path: Path
    ) -> None:
        shown = secret_file_named(written, tmp_path / written)

        assert written.split("/")[0] not in shown and written.split("/")[-1] not in shown
        assert shown.startswith(f"the name given ({len(written)} characters, not repeated")
        assert shown.endswith(f"looked for below {tmp_path})")

    def test_a_relative_name_is_looked_for_below_the_working_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)

        assert secret_file_named(self.SECRET, Path(self.SECRET)).endswith(
            f"looked for below {tmp_path})")


class TestASecretShapedLikeAPath:
    """Session 45: session 43's rule said a name back whenever it began with ``~``, ended in
    a lower-case extension or had a folder that is there; a secret so shaped was said whole.
    Now a name is said only when its file's name reads as one (lower-case words, perhaps an
    extension): of these, nothing but the folder it was looked for in."""

    @pytest.mark.parametrize(("written", "below"), [
        ("~hunter2", "."), ("~/Hunter2", "."), ("hunter2.txt", "."), ("s3cr3t.key", "."),
        ("secrets/aB3+x/==", "secrets"), ("/9j/4AAQSk", "/"),
        ("secrets/x+y==", "secrets"), ("nowhere/hunter", "."),
    ], ids=["tilde", "tilde-slash", "digit-txt", "digit-key", "signs-below-a-folder-there",
            "base64-from-the-root", "signs", "folder-not-there"])
    def test_none_of_it_is_said(self, written: str, below: str, tmp_path: Path) -> None:
        (tmp_path / "secrets").mkdir()

        shown = secret_file_named(written, tmp_path / written)

        name = written.rsplit("/", 1)[-1]
        assert name not in shown and written not in shown
        assert shown.endswith(f"looked for below {(tmp_path / below).resolve()})")
        assert f"({len(written)} characters, not repeated here" in shown

    def test_a_name_after_a_tilde_naming_no_user_is_not_said_either(self) -> None:
        with pytest.raises(ConfigError) as caught:
            expand_user("~hunter2-no-such-user", source="--client-secret-file", secret=True)

        assert "hunter2" not in str(caught.value)
        assert "the name given (21 characters, not repeated here" in str(caught.value)


def _stat_error(path: str) -> OSError | ValueError:
    """What stat raised for ``path`` (the test fails if it raised nothing)."""
    try:
        os.stat(path)
    except (OSError, ValueError) as exc:
        return exc
    raise AssertionError(f"{path!r} was stat'ed")


class TestUnusablePaths:
    """Which errors of stat say the path itself cannot name a file (session 45)."""

    def test_a_path_no_file_can_be_at_is_said_why(self, tmp_path: Path) -> None:
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        assert unusable_path(_stat_error(str(tmp_path / ("n" * 300)))) == (
            "it is too long for this system (a name at most 255 bytes, a path at most 4096)")
        assert unusable_path(_stat_error("p" * 200_000)) == unusable_path(
            _stat_error(str(tmp_path / ("n" * 300))))
        assert unusable_path(_stat_error(str(tmp_path / "loop"))) == (
            "its symbolic links lead round in a loop")
        assert unusable_path(_stat_error(f"{tmp_path}/a\0b")) == "it holds a NUL character"
        assert unusable_path(OSError(errno.EINVAL, "Invalid argument")) == (
            "this system does not take it as a file name")

    def test_an_error_of_the_file_itself_is_not_the_paths(self, tmp_path: Path) -> None:
        assert unusable_path(_stat_error(str(tmp_path / "missing"))) is None
        assert unusable_path(_stat_error(str(tmp_path / "missing" / "x"))) is None
        assert unusable_path(PermissionError(errno.EACCES, "Permission denied")) is None
        assert unusable_path(ValueError("some other value")) is None


class TestAPathPeopleWrite:
    """Review (rv45-small): session 45's rule hid a real path whose file's name had a capital
    or a digit (``secrets/Client_Secret.txt``, ``form4-secret-2.txt``), two dots, or that
    began with a Windows drive read on another system: the user was not shown the path they
    typed. A folder the user wrote that is there, or a drive, makes it a path; a name with
    signs a file's seldom has still hides it (:class:`TestASecretShapedLikeAPath`)."""

    @pytest.mark.parametrize("written", [
        "secrets/Client_Secret.txt", "secrets/form4-secret-2.txt", "secrets/formlabs2",
        "secrets/sub/Client.Secret.txt", "secrets/client.secret.txt", "C:\\secrets\\x.txt",
        "D:/Lab/Client_Secret.txt",
    ])
    def test_it_is_said_as_written(self, written: str, tmp_path: Path) -> None:
        (tmp_path / "secrets").mkdir()

        assert secret_file_named(written, tmp_path / written) == written
