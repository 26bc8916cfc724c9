"""expand_user: a path a user wrote with ``~`` or ``~name`` expanded, or a ConfigError that says
which path, where it was written and what helps (never Python's RuntimeError)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import default_store_path
from preform_pipeline.userpath import expand_user, own_home

REPO_ROOT = Path(__file__).resolve().parents[2]
#: A user id no password database of a test machine lists.
UNLISTED_UID = 54_321


def _other_python() -> Path | None:
    """A Python of this version that any user may start, when root may start it as one."""
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return None
    found = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}",
                         path="/usr/bin:/usr/local/bin")
    return Path(found) if found else None


OTHER_PYTHON = _other_python()


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
