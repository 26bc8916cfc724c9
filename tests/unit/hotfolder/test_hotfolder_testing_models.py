"""The tiny models the package's test helpers make: each reads as the same tetrahedron in its
format, and each seed gives other content (the kill loops tell drops apart by digest)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest

from preform_pipeline.geometry.readers import read_mesh_bytes
from preform_pipeline.hotfolder.testing import tetra_3mf_bytes, tetra_obj_bytes, tetra_stl_bytes

MAKERS: dict[str, Callable[[int], bytes]] = {
    ".stl": tetra_stl_bytes, ".obj": tetra_obj_bytes, ".3mf": tetra_3mf_bytes}


@pytest.mark.parametrize("suffix", sorted(MAKERS))
class TestTinyModels:
    def test_each_reads_as_a_tetrahedron_two_millimetres_wide(self, suffix: str) -> None:
        mesh = read_mesh_bytes(MAKERS[suffix](3), suffix, name="tetra")

        low, high = mesh.bounds
        assert mesh.triangle_count == 4
        np.testing.assert_allclose(high - low, [2.0, 2.0, 2.0], atol=1e-3)

    def test_each_seed_gives_other_content(self, suffix: str) -> None:
        def model(seed: int) -> bytes:  # a 3MF's zip entries carry the time: read its mesh
            return read_mesh_bytes(MAKERS[suffix](seed), suffix, name="m").triangles.tobytes()

        digests = {hashlib.sha256(model(seed)).hexdigest() for seed in range(5)}

        assert len(digests) == 5
