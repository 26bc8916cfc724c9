"""Hostile sidecars: deep nesting is a SidecarError, never a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import SidecarError
from preform_pipeline.hotfolder.sidecar import read_sidecar


class TestDeepNesting:
    """JSON and YAML nested thousands of levels deep are refused with a reason."""

    @pytest.mark.parametrize("name", ["part.json", "part.yaml"])
    def test_deep_nesting(self, tmp_path: Path, name: str) -> None:
        path = tmp_path / name
        path.write_text("[" * 50_000 + "]" * 50_000, encoding="utf-8")
        with pytest.raises(SidecarError) as caught:
            read_sidecar(path)
        assert caught.value.reason
