"""Package names imported when first asked for (PEP 562 ``__getattr__``), not at the start.

A package that imports its modules' names at its top imports all of them, and all that they
import, whenever any one of its modules is imported: ``jobs``, reading the hot folder's intake
(``hotfolder.intake``), paid for the watcher, the daemon, the executor and numpy. Such a package
says where each of its names lives and sets ``__getattr__ = lazy_exports(__name__, HOMES)``;
it imports the same names under ``if TYPE_CHECKING:`` for mypy and for readers
(``tests/unit/test_lazy_exports.py`` checks that the two and ``__all__`` agree).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, Sequence[str]]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: ``homes`` maps each module to the names of
    it the package offers; a name is imported from its module the first time it is used."""
    home_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> object:
        module = home_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            value = getattr(importlib.import_module(module), name)
        except AttributeError as exc:
            # Raised while the name's module was imported (``os.no_such``, a library that
            # dropped a name, an import cycle), or a name its module lacks: an AttributeError
            # from here is what Python reads as "no such name", so ``from package import
            # name`` said only "cannot import name" (the error itself dropped) and
            # ``hasattr`` said False. An ImportError carrying it passes as itself.
            raise ImportError(f"cannot import {name!r} from {module!r} (for {package!r}): "
                              f"{type(exc).__name__}: {exc}", name=module) from exc
        setattr(sys.modules[package], name, value)  # the next use finds it without this call
        return value

    return __getattr__
