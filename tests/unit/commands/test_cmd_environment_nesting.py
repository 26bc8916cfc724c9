"""A settings variable of JSON nested too deeply to read is a settings error naming it
(session 31: ``PREFORM_PIPELINE_REMOTES`` or a ``_SERVER_`` JSON variable of 60,000 ``[``
ended every command with exit 70, "unexpected failure (RecursionError ...)")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT_S = 60.0
NESTED = "[" * 60_000 + "]" * 60_000


@pytest.mark.parametrize("name", ["PREFORM_PIPELINE_REMOTES", "PREFORM_PIPELINE_SERVER_PATH_MAP",
                                  "PREFORM_PIPELINE_SERVER_EXTRA_ARGS"])
def test_jobs_says_which_variable_and_exits_1(tmp_path: Path, name: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    environ.update({"XDG_DATA_HOME": str(tmp_path), name: NESTED})
    done = subprocess.run([sys.executable, "-m", "preform_pipeline", "jobs"], env=environ,
                          text=True, capture_output=True, timeout=TIMEOUT_S, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"error: environment variable {name}: expected valid JSON, got text "
                           f"nested too deeply to read (fix or unset {name})\n")
