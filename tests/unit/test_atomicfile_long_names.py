"""A file whose name the file system takes is saved whole, however long: its temporary's name
is cut to fit, and a sweep still knows a killed writer's temporary by that name.

The writers of the sweep's tests are real child processes that write their temporary and end.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from preform_pipeline.atomicfile import (
    NAME_MAX_BYTES,
    default_temporary,
    instance_tag,
    write_text_atomically,
)
from preform_pipeline.hotfolder.files import sweep_temporaries

WAIT_S = 20.0
#: Writes the temporary a report of that name would have, then ends: a writer killed mid-write.
WRITER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from preform_pipeline.atomicfile import default_temporary\n"
    "path = default_temporary(Path(sys.argv[1]))\n"
    "path.write_bytes(b'half a report')\n"
    "print(path, flush=True)\n"
)


def _name(length: int, letter: str = "r", suffix: str = ".json") -> str:
    """A name of ``length`` bytes: ``letter`` repeated, ASCII filler, then ``suffix``."""
    room = length - len(suffix)
    size = len(letter.encode())
    return letter * (room // size) + "x" * (room % size) + suffix


class TestALongNameIsSaved:
    """Names up to the file system's 255 bytes are written; the folder keeps only the file."""

    @pytest.mark.parametrize("letter", ["r", "é", "字"], ids=["ASCII", "two-byte", "three-byte"])
    def test_a_name_of_250_bytes_is_written_whole(self, tmp_path: Path, letter: str) -> None:
        path = tmp_path / _name(250, letter)
        assert len(os.fsencode(path.name)) == 250

        write_text_atomically(path, '{"build": "r-001"}\n')

        assert path.read_text(encoding="utf-8") == '{"build": "r-001"}\n'
        assert list(tmp_path.iterdir()) == [path]

    def test_a_name_of_255_bytes_is_written_too(self, tmp_path: Path) -> None:
        path = tmp_path / _name(NAME_MAX_BYTES)

        write_text_atomically(path, "whole")

        assert path.read_text(encoding="utf-8") == "whole"


class TestTheTemporarysName:
    """A short name's temporary is ``.<name>.<pid>-<instance tag>.tmp``; a long one's is cut."""

    def test_a_short_names_temporary_keeps_the_whole_name(self, tmp_path: Path) -> None:
        temporary = default_temporary(tmp_path / "r-001.json")

        assert temporary.name == f".r-001.json.{os.getpid()}-{instance_tag()}.tmp"

    @pytest.mark.parametrize("letter", ["r", "é", "字"], ids=["ASCII", "two-byte", "three-byte"])
    def test_a_long_names_temporary_fits_and_is_cut_between_characters(
        self, tmp_path: Path, letter: str
    ) -> None:
        for lead in ("", "a", "ab"):  # the cut falls at each byte of a character in turn
            name = lead + _name(250 - len(lead), letter)
            temporary = default_temporary(tmp_path / name).name

            assert len(os.fsencode(temporary)) <= NAME_MAX_BYTES
            temporary.encode("utf-8", errors="strict")  # no half character (a surrogate)
            assert temporary.startswith("." + name[: 150 // len(letter.encode())])  # 150 bytes
            assert temporary.endswith(f".{os.getpid()}-{instance_tag()}.tmp")

    def test_two_long_names_that_start_alike_get_different_temporaries(
        self, tmp_path: Path
    ) -> None:
        # Two reports written at once by one process must not share a temporary.
        first, second = _name(250, suffix="-a.json"), _name(250, suffix="-b.json")

        assert default_temporary(tmp_path / first) != default_temporary(tmp_path / second)


class TestTheSweepKnowsALongNamesTemporary:
    """A killed writer's temporary of a long name is swept like a short name's."""

    def test_a_dead_writers_cut_temporary_is_swept(
        self, tmp_path: Path, python_exe: str
    ) -> None:
        target = tmp_path / _name(250)
        written = subprocess.run([python_exe, "-c", WRITER, str(target)], capture_output=True,
                                 text=True, timeout=WAIT_S, check=True)
        left = Path(written.stdout.strip())
        assert left.parent == tmp_path and left.exists()  # the writer could make it

        assert sweep_temporaries([tmp_path]) == (left,)
        assert list(tmp_path.iterdir()) == []
