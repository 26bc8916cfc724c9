"""Reading request bodies the way the contract defines them, answering 400 for anything else.

The official request schemas are not shipped with the package, so each operation reads its body
through these small typed accessors. Every problem becomes ``SimError(400, code, message)``
whose message starts with the JSON path of the offending value (``$.position.x: ...``), so a
client sees exactly which field to fix.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Collection, Mapping
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any, Final

from preform_pipeline.wording import noun

from .drives import mounted_drives, on_drive
from .protocol import SimError

if TYPE_CHECKING:
    # numpy and the geometry come with the first orientation read (orientation_matrix): every
    # request body is read here, and a simulator that is only asked GET / never needs them.
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "INVALID_BODY",
    "INVALID_ORIENTATION",
    "INVALID_PATH",
    "FILE_NOT_FOUND",
    "Body",
    "absolute_path",
    "bad_body",
    "euler_of",
    "existing_file",
    "orientation_matrix",
    "writable_target",
]

INVALID_BODY = "INVALID_BODY"
INVALID_ORIENTATION: Final = "INVALID_ORIENTATION"
INVALID_PATH = "INVALID_PATH"
FILE_NOT_FOUND = "FILE_NOT_FOUND"


def bad_body(path: str, message: str, code: str = INVALID_BODY) -> SimError:
    return SimError(400, code, f"{path}: {message}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _finite(value: float) -> float | None:
    """``value`` as a float, or None when it is not finite: NaN, an infinity, or an integer
    too large for a float (JSON's ``1`` followed by 400 zeros is read as a Python int, and
    float() of it raises OverflowError rather than giving an infinity)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class Body:
    """A JSON object from a request, read field by field with its JSON path for messages."""

    def __init__(self, data: Any, path: str = "$", *, required: bool = True) -> None:
        if data is None and not required:
            data = {}
        if not isinstance(data, Mapping):
            raise bad_body(path, f"expected a JSON object, got {_type_name(data)}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return key in self.data

    def only(self, allowed: Collection[str]) -> None:
        """Refuse keys the schema forbids (``additionalProperties: false``)."""
        extra = sorted(k for k in self.data if k not in allowed)
        if extra:
            raise bad_body(
                self.path,
                f"unexpected {noun(len(extra), 'field')} {', '.join(extra)}; "
                f"allowed: {', '.join(sorted(allowed))}",
            )

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def object(self, key: str, *, required: bool = False) -> Body | None:
        if key not in self.data:
            if required:
                raise bad_body(self.at(key), "is required")
            return None
        return Body(self.data[key], self.at(key))

    def string(self, key: str, *, required: bool = False, empty_ok: bool = True) -> str | None:
        if key not in self.data:
            if required:
                raise bad_body(self.at(key), "is required")
            return None
        value = self.data[key]
        if not isinstance(value, str):
            raise bad_body(self.at(key), f"expected a string, got {_type_name(value)}")
        if not empty_ok and not value.strip():
            raise bad_body(self.at(key), "must not be empty")
        return value

    def req_string(self, key: str, *, empty_ok: bool = False) -> str:
        value = self.string(key, required=True, empty_ok=empty_ok)
        assert value is not None
        return value

    def choice(self, key: str, choices: Collection[str], default: str | None = None) -> str | None:
        value = self.string(key)
        if value is None:
            return default
        if value not in choices:
            raise bad_body(self.at(key), f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: float | None = None,
    ) -> float | None:
        if key not in self.data:
            if required:
                raise bad_body(self.at(key), "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_body(self.at(key), f"expected a number, got {_type_name(value)}")
        number = _finite(value)
        if number is None:
            raise bad_body(self.at(key), "must be a finite number")
        if minimum is not None and number < minimum:
            raise bad_body(self.at(key), f"{number:g} is below the minimum {minimum:g}")
        if maximum is not None and number > maximum:
            raise bad_body(self.at(key), f"{number:g} is above the maximum {maximum:g}")
        if exclusive_minimum is not None and number <= exclusive_minimum:
            raise bad_body(self.at(key), f"{number:g} must be greater than {exclusive_minimum:g}")
        return number

    def req_number(self, key: str, **limits: float) -> float:
        value = self.number(key, required=True, **limits)
        assert value is not None
        return value

    def integer(
        self,
        key: str,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        if key not in self.data:
            return default
        value = self.data[key]
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral:
            raise bad_body(self.at(key), f"expected an integer, got {value!r}")
        number = int(value)
        if minimum is not None and number < minimum:
            raise bad_body(self.at(key), f"{number} is below the minimum {minimum}")
        if maximum is not None and number > maximum:
            raise bad_body(self.at(key), f"{number} is above the maximum {maximum}")
        return number

    def boolean(self, key: str, default: bool | None = None) -> bool | None:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise bad_body(self.at(key), f"expected true or false, got {_type_name(value)}")
        return value

    def triple(self, key: str) -> tuple[float, float, float] | None:
        """An ``{x, y, z}`` object (ScenePositionModel / EulerAnglesModel)."""
        inner = self.object(key)
        if inner is None:
            return None
        return inner.xyz()

    def xyz(self) -> tuple[float, float, float]:
        return (self.req_number("x"), self.req_number("y"), self.req_number("z"))

    def vector(self, key: str, length: int) -> tuple[float, ...]:
        return _numbers(self.data.get(key), self.at(key), length)

    def selection(self, key: str = "models") -> list[str] | None:
        """A ModelsSelectionModel: ``None`` for "ALL" (the default), else the listed ids."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "ALL":
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_body(self.at(key), 'expected "ALL" or an array of model id strings')
        return list(value)


def absolute_path(text: str, where: str) -> Path:
    """A server-side path: must be absolute on this machine (the contract refuses relative).
    A path on a mounted drive (``--drive``) is that drive's local folder."""
    if "\0" in text:
        # No operating system takes one; refused here, before a file call raises ValueError.
        raise SimError(400, INVALID_PATH, f"{where}: {text!r} holds a NUL character")
    mounted = on_drive(text)
    if mounted is not None:
        return mounted
    path = Path(text)
    if not text or not path.is_absolute():
        windows = PureWindowsPath(text).is_absolute()
        if windows and mounted_drives():
            # Playing a Windows machine (--drive): the path is a Windows one, on a drive or
            # share that machine does not have. "A Windows path on a non-Windows simulator"
            # was false here, and sent a newcomer with a wrong path map the wrong way.
            raise SimError(
                400,
                INVALID_PATH,
                f"{where}: {text!r} is on {PureWindowsPath(text).drive}, which this server (a "
                f"simulated Windows machine) does not have; it has "
                f"{', '.join(mounted_drives())}",
            )
        hint = " (a Windows path on a non-Windows simulator)" if windows else ""
        raise SimError(
            400,
            INVALID_PATH,
            f"{where}: {text!r} is not an absolute path on the server{hint}; "
            "send a full operating-system path",
        )
    return path


def existing_file(text: str, where: str) -> Path:
    path = absolute_path(text, where)
    if not path.is_file():
        raise SimError(400, FILE_NOT_FOUND, f"{where}: no file at {text!r}")
    return path


def writable_target(text: str, where: str) -> Path:
    """A path to write to: absolute, and its folder must already exist.

    Written as a program that opens the path writes: through a symbolic link, to the file it
    names. Only a regular file is replaced: the simulator writes a temporary file and renames
    it over the target, which would put a file in place of a folder, a device or a named pipe.
    """
    path = Path(os.path.realpath(absolute_path(text, where)))
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise SimError(
            400,
            INVALID_PATH,
            f"{where}: {text!r} is {_kind(mode)}, not a file; give the path of a file to "
            "create or replace",
        )
    if not path.parent.is_dir():
        raise SimError(
            400,
            INVALID_PATH,
            f"{where}: the folder {str(path.parent)!r} does not exist; create it first",
        )
    return path



def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _numbers(value: Any, where: str, length: int) -> tuple[float, ...]:
    """``value`` as ``length`` finite numbers; refused by its element's JSON path."""
    if not isinstance(value, list) or len(value) != length:
        raise bad_body(where, f"expected an array of {length} numbers")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise bad_body(f"{where}[{i}]", f"expected a number, got {item!r}")
        number = _finite(item)
        if number is None:
            raise bad_body(f"{where}[{i}]", "must be a finite number")
        out.append(number)
    return tuple(out)


def orientation_matrix(body: Body) -> npt.NDArray[np.float64]:
    """The rotation an OrientationModel describes: Euler angles (degrees, z then x then y),
    a 3x3 ``linear`` matrix (must be a rotation), or ``z_direction``/``x_direction`` (the
    model-space vectors that end up pointing up and right)."""
    import numpy as np

    from preform_pipeline.geometry import euler_matrix

    if body.has("linear"):
        rows = body.raw("linear")
        if not isinstance(rows, list) or len(rows) != 3:
            raise bad_body(body.at("linear"), "expected a 3x3 array of numbers")
        # Each row by its index: "$.orientation.linear[1][1]", where a row read as a body
        # of its own was "linear.row[1]", the row lost.
        matrix = np.array(
            [_numbers(row, f"{body.at('linear')}[{n}]", 3) for n, row in enumerate(rows)],
            dtype=np.float64,
        )
    elif body.has("z_direction") or body.has("x_direction"):
        z = np.array(body.vector("z_direction", 3))
        x = np.array(body.vector("x_direction", 3))
        if np.linalg.norm(z) < 1e-9 or np.linalg.norm(x) < 1e-9:
            raise bad_body(body.path, "direction vectors must not be zero", INVALID_ORIENTATION)
        z, x = z / np.linalg.norm(z), x / np.linalg.norm(x)
        if abs(float(z @ x)) > 1e-3:
            raise bad_body(
                body.path, "x_direction must be perpendicular to z_direction", INVALID_ORIENTATION
            )
        matrix = np.stack([x, np.cross(z, x), z])
    else:
        x_deg, y_deg, z_deg = body.xyz()
        return euler_matrix(x_deg, y_deg, z_deg)
    if not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-4) or np.linalg.det(matrix) <= 0:
        raise bad_body(
            body.path, "is not a rotation (orthonormal, determinant +1)", INVALID_ORIENTATION
        )
    return matrix


def euler_of(matrix: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """Local API Euler angles ``(x, y, z)`` in degrees of a rotation matrix."""
    from preform_pipeline.geometry import matrix_to_euler

    x, y, z = matrix_to_euler(matrix)
    return (x, y, z)
