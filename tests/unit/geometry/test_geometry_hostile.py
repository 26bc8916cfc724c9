"""The hostile corpus through the model readers: each input gets its class of message."""

from __future__ import annotations

import re
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry import impostor, read_mesh, stl_completeness, write_stl
from tests.hostile_corpus import Entry, tetra, write_corpus

#: A reason longer than this no longer reads as one sentence.
MAX_REASON_CHARS = 300


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    folder = tmp_path_factory.mktemp("hostile")
    return folder, write_corpus(folder)


def peak_while_refusing(folder: Path, names: tuple[str, ...]) -> int:
    """The most memory Python and numpy held while each of ``names`` was read and refused."""
    tracemalloc.start()
    try:
        for name in names:
            with pytest.raises(ModelFileError):
                read_mesh(folder / name)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class TestCorpus:
    """Every hostile file is refused with a short message of the expected class."""

    def test_the_corpus_is_large_enough(self, corpus: tuple[Path, list[Entry]]) -> None:
        assert len([e for e in corpus[1] if e.reader]) >= 50

    def test_every_entry_gets_its_message(self, corpus: tuple[Path, list[Entry]]) -> None:
        folder, entries = corpus
        wrong: list[str] = []
        for entry in (e for e in entries if e.reader):
            try:
                mesh = read_mesh(folder / entry.name)
            except ModelFileError as exc:
                if not re.search(entry.expect, exc.reason):
                    wrong.append(f"{entry.name}: {exc.reason!r} !~ {entry.expect!r}")
                elif len(exc.reason) > MAX_REASON_CHARS or not exc.hint:
                    wrong.append(f"{entry.name}: reason too long or no hint: {exc}")
                elif exc.path != folder / entry.name:
                    wrong.append(f"{entry.name}: error names {exc.path}")
            else:
                wrong.append(f"{entry.name}: read as {mesh!r}")
        assert not wrong, "\n".join(wrong)

    def test_no_entry_makes_python_or_numpy_warn(self, corpus: tuple[Path, list[Entry]]) -> None:
        # A warning is printed on the user's console with a source line (session 25: numpy's
        # "overflow encountered in cast" for a coordinate beyond float32).
        folder, entries = corpus
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for entry in (e for e in entries if e.reader):
                with pytest.raises(ModelFileError):
                    read_mesh(folder / entry.name)
        assert [str(w.message) for w in caught] == []

    def test_no_advice_to_wait_for_files_that_are_not_meshes(
        self, corpus: tuple[Path, list[Entry]]
    ) -> None:
        folder, entries = corpus
        for entry in entries:
            if entry.reader and entry.name.startswith(("photo", "noise", "notes", "drawing")):
                with pytest.raises(ModelFileError) as caught:
                    read_mesh(folder / entry.name)
                assert "wait" not in str(caught.value)

    def test_a_zip_bomb_fails_with_little_memory(self, corpus: tuple[Path, list[Entry]]) -> None:
        # The 1.5 GiB bomb is 1.5 MB on disk; reading it must cost about that, not gigabytes.
        peak = peak_while_refusing(corpus[0], ("bomb.3mf", "lying-bomb.3mf", "ratio-bomb.3mf"))
        assert peak < 64 * 1024 * 1024

    def test_a_long_number_fails_with_little_memory(
        self, corpus: tuple[Path, list[Entry]]
    ) -> None:
        # Each file is under 100 kB; an array as wide as its longest number was 48 MB.
        peak = peak_while_refusing(
            corpus[0], ("long-number.stl", "long-number.obj", "long-index.obj"))
        assert peak < 8 * 1024 * 1024


class TestByteOrderMark:
    """An ASCII STL saved "UTF-8 with BOM" reads as the same triangles as one saved without,
    and a binary STL whose header starts with the mark still reads as binary."""

    def test_an_ascii_stl_with_the_mark_reads_as_without_it(self, tmp_path: Path) -> None:
        plain = tmp_path / "plain.stl"
        write_stl(plain, tetra(), ascii=True)
        marked = tmp_path / "notepad.stl"
        marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
        mesh = read_mesh(marked)
        np.testing.assert_array_equal(mesh.triangles, read_mesh(plain).triangles)
        assert stl_completeness(marked)

    def test_one_cut_short_is_still_arriving(self, tmp_path: Path) -> None:
        plain = tmp_path / "plain.stl"
        write_stl(plain, tetra(), ascii=True)
        cut = tmp_path / "notepad.stl"
        cut.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes()[:-40])
        assert not stl_completeness(cut)
        with pytest.raises(ModelFileError, match="ends without 'endsolid'"):
            read_mesh(cut)

    def test_a_binary_header_starting_with_the_mark_and_solid_is_binary(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "exported.stl"
        write_stl(path, tetra())
        data = bytearray(path.read_bytes())
        data[:80] = (b"\xef\xbb\xbfsolid exported by a tool" + b" " * 80)[:80]
        path.write_bytes(bytes(data))
        np.testing.assert_array_equal(read_mesh(path).triangles, tetra())
        assert stl_completeness(path)


class TestSniffing:
    """Signatures are recognised whatever the extension says, and meshes are left alone."""

    def test_a_binary_stl_is_not_an_impostor(self, tmp_path: Path) -> None:
        write_stl(tmp_path / "a.stl", tetra())
        assert impostor((tmp_path / "a.stl").read_bytes()[:1024], ".stl") is None

    def test_a_zip_is_an_impostor_for_stl_but_not_for_3mf(self) -> None:
        assert impostor(b"PK\x03\x04rest", ".stl") == "a ZIP archive"
        assert impostor(b"PK\x03\x04rest", ".3mf") is None

    def test_an_obj_comment_is_not_a_script(self) -> None:
        assert impostor(b"#! exported by a tool\nv 0 0 0\n", ".obj") is None


class TestMeshDefects:
    """Repairable defects are read, and logged with what is wrong."""

    def test_a_tiny_inverted_mesh_is_read_and_logged_as_inside_out(self, tmp_path: Path) -> None:
        inverted = tetra(0.01)[:, ::-1, :]
        write_stl(tmp_path / "inv.stl", inverted)
        with capture_logs() as logs:
            mesh = read_mesh(tmp_path / "inv.stl")
        assert mesh.triangle_count == 4
        defects = [e["defect"] for e in logs if e["event"] == "mesh_defect"]
        assert defects and "inside out" in defects[0]

    def test_an_open_mesh_is_logged_as_open(self, tmp_path: Path) -> None:
        write_stl(tmp_path / "open.stl", tetra()[:3])
        with capture_logs() as logs:
            read_mesh(tmp_path / "open.stl")
        assert any("open or non-manifold" in e.get("defect", "") for e in logs)

    def test_a_closed_mesh_logs_nothing(self, tmp_path: Path) -> None:
        write_stl(tmp_path / "ok.stl", tetra())
        with capture_logs() as logs:
            read_mesh(tmp_path / "ok.stl")
        assert not [e for e in logs if e["event"] == "mesh_defect"]

    def test_an_oversized_file_is_refused_before_reading(self, tmp_path: Path) -> None:
        write_stl(tmp_path / "big.stl", np.repeat(tetra(), 50, axis=0))
        with pytest.raises(ModelFileError, match=r"over the .* limit"):
            read_mesh(tmp_path / "big.stl", max_bytes=1000)
