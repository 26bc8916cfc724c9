"""Packages that import their names on first use (lazyexports.py) offer what they list."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest

from preform_pipeline.lazyexports import lazy_exports
from preform_pipeline.wording import counted

LAZY_PACKAGES = (
    "preform_pipeline.cloud",
    "preform_pipeline.executor",
    "preform_pipeline.geometry",
    "preform_pipeline.hotfolder",
    "preform_pipeline.recipes",
    "preform_pipeline.store",
)


def imported_for_mypy(package: str) -> dict[str, str]:
    """Name -> module of the imports under the package's ``if TYPE_CHECKING:``."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                found.update((alias.name, statement.module) for alias in statement.names)
    return found


def homes_of(package: str) -> dict[str, str]:
    module = importlib.import_module(package)
    return {name: home for home, names in module._HOMES.items() for name in names}


class TestLazyPackages:
    """What mypy sees, what the package hands out and ``__all__`` are the same names."""

    @pytest.mark.parametrize("package", LAZY_PACKAGES)
    def test_the_names_mypy_sees_are_the_names_handed_out(self, package: str) -> None:
        homes = homes_of(package)
        assert homes == imported_for_mypy(package)
        assert sorted(importlib.import_module(package).__all__) == sorted(homes)

    @pytest.mark.parametrize("package", LAZY_PACKAGES)
    def test_each_name_is_the_object_of_its_module(self, package: str) -> None:
        module = importlib.import_module(package)
        for name, home in homes_of(package).items():
            assert getattr(module, name) is getattr(importlib.import_module(home), name)


class TestLazyExports:
    """A name is imported the first time it is asked for; an unknown one is refused."""

    def test_a_name_comes_from_its_module_and_stays(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        package = types.ModuleType("lazy_probe")
        monkeypatch.setitem(sys.modules, "lazy_probe", package)
        lookup = lazy_exports("lazy_probe", {"preform_pipeline.wording": ("counted",)})
        assert lookup("counted") is counted
        assert vars(package)["counted"] is counted  # later uses skip the lookup

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        refusal = re.escape("'preform_pipeline.hotfolder' has no attribute 'no_such_name'")
        with pytest.raises(AttributeError, match=refusal):
            importlib.import_module("preform_pipeline.hotfolder").no_such_name  # noqa: B018

    def test_an_error_importing_a_names_module_is_an_import_error_carrying_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Review (rv45-spawn): an AttributeError raised while a name's module is imported (a
        library that dropped a name, an import cycle) was the package's answer itself, which
        Python reads as "no such name": ``from package import name`` said only "cannot import
        name", the error dropped, and ``hasattr`` said False."""
        (tmp_path / "lazy_probe_home.py").write_text("import os\n\nos.no_such_name\nvalue = 1\n",
                                                     encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        package = types.ModuleType("lazy_probe")
        package.__getattr__ = lazy_exports(  # type: ignore[method-assign]
            "lazy_probe", {"lazy_probe_home": ("value",)})
        monkeypatch.setitem(sys.modules, "lazy_probe", package)
        for reads in ("from lazy_probe import value", "hasattr(lazy_probe, 'value')"):
            with pytest.raises(ImportError) as raised:
                exec(reads, {"lazy_probe": package})  # the import statement itself
            assert raised.value.name == "lazy_probe_home"
            cause = raised.value.__cause__
            assert isinstance(cause, AttributeError) and cause.name == "no_such_name"
        assert "lazy_probe_home" not in sys.modules
