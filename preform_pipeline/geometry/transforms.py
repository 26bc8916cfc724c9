"""Rotations in the Local API convention.

The Local API's Euler angles are degrees, applied in the order z first, then x, then y, about
the fixed scene axes. With column vectors that is ``R = Ry @ Rx @ Rz``. :func:`matrix_to_euler`
returns the x angle in [-90, 90] and y, z in (-180, 180].
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt

__all__ = ["AXIS_ALIGNED_ROTATIONS", "euler_matrix", "matrix_to_euler"]

# Below this |cos(x)| the z and y rotations are about the same axis (gimbal lock) and only
# their sum is defined; z is then reported as 0.
_GIMBAL_EPSILON = 1e-9


def _rx(deg: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(deg: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(deg: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_matrix(x_deg: float, y_deg: float, z_deg: float) -> npt.NDArray[np.float64]:
    """3x3 rotation for Local API Euler angles: rotate about z, then x, then y."""
    return _ry(y_deg) @ _rx(x_deg) @ _rz(z_deg)


def _wrap(deg: float) -> float:
    wrapped = math.fmod(deg, 360.0)
    if wrapped <= -180.0:
        wrapped += 360.0
    elif wrapped > 180.0:
        wrapped -= 360.0
    return 0.0 if wrapped == 0.0 else wrapped  # no -0.0 in reports


def matrix_to_euler(m: npt.ArrayLike) -> tuple[float, float, float]:
    """Euler angles ``(x, y, z)`` in degrees such that ``euler_matrix(x, y, z) == m``.

    ``m`` must be a rotation matrix. Derivation: with ``R = Ry(b) Rx(a) Rz(c)``,
    ``R[1,2] = -sin a``, ``R[1,0] = cos a sin c``, ``R[1,1] = cos a cos c``,
    ``R[0,2] = sin b cos a`` and ``R[2,2] = cos b cos a``.
    """
    r = np.asarray(m, dtype=np.float64)
    if r.shape != (3, 3):
        raise ValueError(f"matrix must be 3x3, got {r.shape}")
    sin_a = float(np.clip(-r[1, 2], -1.0, 1.0))
    a = math.degrees(math.asin(sin_a))
    cos_a = math.sqrt(max(0.0, 1.0 - sin_a * sin_a))
    if cos_a > _GIMBAL_EPSILON:
        c = math.degrees(math.atan2(r[1, 0], r[1, 1]))
        b = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    else:
        # cos a == 0: with c = 0, R[0,0] = cos b and R[0,1] = sin b * sin a.
        c = 0.0
        b = math.degrees(math.atan2(r[0, 1] * math.copysign(1.0, sin_a), r[0, 0]))
    return _wrap(a), _wrap(b), _wrap(c)


def _axis_aligned_rotations() -> tuple[npt.NDArray[np.float64], ...]:
    found = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            for row, (col, sign) in enumerate(zip(perm, signs, strict=True)):
                m[row, col] = sign
            if np.linalg.det(m) > 0:
                found.append(m)
    # Identity first so that ties in any search keep the model as it is.
    found.sort(key=lambda m: (not np.array_equal(m, np.eye(3)), tuple(m.ravel())))
    return tuple(found)


#: The 24 rotations mapping coordinate axes onto coordinate axes; identity first.
AXIS_ALIGNED_ROTATIONS: tuple[npt.NDArray[np.float64], ...] = _axis_aligned_rotations()
