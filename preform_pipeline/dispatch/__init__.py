"""Dispatch: which printer a prepared build goes to, and waiting until one is free.

See docs/dispatch.md. Modules: :mod:`.target` (where a build may print), :mod:`.waiting` (the
waiting queue, priority then oldest first), :mod:`.sender` (loading the saved .form and
sending it through the print owner; printer readiness), :mod:`.known` (which printers exist,
for ``validate`` and ``plan``). Import them directly: this package imports nothing at load,
because the settings (read early by everything) reach :mod:`.target` through ``verify``.
"""

from __future__ import annotations

__all__: list[str] = []
