"""``read_mesh``: one entry point for every supported model file, chosen by suffix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ModelFileError
from ..logging import get_logger
from ._checks import mesh_defects, sane_mesh
from .bounded import DEFAULT_MAX_MODEL_FILE_BYTES, checked_file_size, read_file_bounded
from .mesh import Mesh
from .obj import read_obj_bytes
from .stl import read_stl_bytes, read_stl_file
from .threemf import read_3mf_bytes

__all__ = ["SUPPORTED_SUFFIXES", "read_mesh", "read_mesh_bytes"]

_Reader = Callable[..., Mesh]
_READERS: dict[str, _Reader] = {
    ".stl": read_stl_bytes,
    ".obj": read_obj_bytes,
    ".3mf": read_3mf_bytes,
}
#: Lower-case file suffixes :func:`read_mesh` understands.
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_READERS)
_log = get_logger(__name__)


def _reader_for(suffix: str, origin: Path) -> _Reader:
    normal = suffix.lower() if suffix.startswith(".") else "." + suffix.lower()
    reader = _READERS.get(normal)
    if reader is None:
        raise ModelFileError(
            origin,
            f"unsupported model file type {suffix!r}",
            hint=f"use one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    return reader


def read_mesh(
    path: Path | str, *, name: str | None = None, max_bytes: int = DEFAULT_MAX_MODEL_FILE_BYTES
) -> Mesh:
    """Read an STL (binary or ASCII), OBJ or 3MF file; the name defaults to the file's stem.

    Raises :class:`~preform_pipeline.errors.ModelFileError` with the path and a reason for a
    missing, empty, oversized, truncated, malformed, degenerate or unsupported file, and for a
    file that is something else under a mesh's name ("this is a PNG image, not an STL").
    Repairable defects (an open mesh, inverted normals) are logged as ``mesh_defect``.
    """
    path = Path(path)
    # The file first: a mistyped folder or file name is "not found", not an unknown type.
    size = checked_file_size(path, max_bytes)
    reader = _reader_for(path.suffix, path)
    label = path.stem if name is None else name
    if size and reader is read_stl_bytes:
        # STL is streamed: a large binary file never sits in memory as bytes.
        parsed = read_stl_file(path, size, max_bytes=max_bytes, name=label, source=path)
    else:
        data = read_file_bounded(path, max_bytes)
        if not data:
            raise ModelFileError(
                path, "file is empty (0 bytes)", hint="copy or export the model again"
            )
        parsed = reader(data, origin=path, name=label, source=path)
    mesh = sane_mesh(parsed, path)
    for defect in mesh_defects(mesh):
        _log.warning("mesh_defect", path=str(path), defect=defect)
    return mesh


def read_mesh_bytes(data: bytes, suffix: str, *, name: str) -> Mesh:
    """Read a model from memory; ``suffix`` (``".stl"``, ``"obj"``...) chooses the format."""
    origin = Path(name + (suffix if suffix.startswith(".") else "." + suffix))
    reader = _reader_for(suffix, origin)
    if not data:
        raise ModelFileError(origin, "file is empty (0 bytes)", hint="export it again")
    return sane_mesh(reader(bytes(data), origin=origin, name=name, source=None), origin)
