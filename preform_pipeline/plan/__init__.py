"""Build planning: packing model footprints onto build platforms, and the step graph."""

from __future__ import annotations

__all__: list[str] = []
