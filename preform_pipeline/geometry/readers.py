"""``read_mesh``: one entry point for every supported model file, chosen by suffix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ModelFileError
from .mesh import Mesh
from .obj import read_obj_bytes
from .stl import read_stl_bytes
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


def read_mesh(path: Path | str, *, name: str | None = None) -> Mesh:
    """Read an STL (binary or ASCII), OBJ or 3MF file; the name defaults to the file's stem.

    Raises :class:`~preform_pipeline.errors.ModelFileError` with the path and a reason for a
    missing, empty, truncated, malformed or unsupported file.
    """
    path = Path(path)
    reader = _reader_for(path.suffix, path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(path, "file not found", hint="check the path") from None
    except IsADirectoryError:
        raise ModelFileError(path, "is a directory, not a model file") from None
    except OSError as exc:
        raise ModelFileError(
            path, f"cannot be read ({exc.strerror or exc})", hint="check file permissions"
        ) from None
    if not data:
        raise ModelFileError(
            path, "file is empty (0 bytes)", hint="wait until it is written, or export it again"
        )
    return reader(data, origin=path, name=path.stem if name is None else name, source=path)


def read_mesh_bytes(data: bytes, suffix: str, *, name: str) -> Mesh:
    """Read a model from memory; ``suffix`` (``".stl"``, ``"obj"``...) chooses the format."""
    origin = Path(name + (suffix if suffix.startswith(".") else "." + suffix))
    reader = _reader_for(suffix, origin)
    if not data:
        raise ModelFileError(origin, "file is empty (0 bytes)", hint="export it again")
    return reader(bytes(data), origin=origin, name=name, source=None)
