"""A text file shorter than a binary STL's header, saved as .stl (a note under the wrong name),
is refused as text, from a file and from bytes alike (real files in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import read_mesh
from preform_pipeline.geometry.stl import BINARY_HEADER_BYTES, read_stl_bytes

NOTE = b"print this one in grey, thanks\n"


class TestAShortTextFile:
    """Shorter than the 84-byte header, text that is not 'solid ...' is said to be text."""

    def test_the_note_is_long_enough_to_be_a_file_but_shorter_than_the_header(self) -> None:
        assert 5 < len(NOTE) < BINARY_HEADER_BYTES

    def test_reading_the_file_says_it_is_text_that_is_not_an_stl(self, tmp_path: Path) -> None:
        path = tmp_path / "note.stl"
        path.write_bytes(NOTE)
        with pytest.raises(ModelFileError) as caught:
            read_mesh(path)
        assert caught.value.reason == (
            "this is a text file that is not an STL (an ASCII STL starts with 'solid')")

    def test_reading_the_bytes_says_the_same(self, tmp_path: Path) -> None:
        origin = tmp_path / "note.stl"
        with pytest.raises(ModelFileError) as caught:
            read_stl_bytes(NOTE, origin=origin, name="note", source=None)
        assert caught.value.reason.startswith("this is a text file that is not an STL")
        assert caught.value.path == origin
