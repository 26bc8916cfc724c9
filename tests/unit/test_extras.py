"""The command a hint gives to install an extra is right for the install that runs."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.extras import install_extra_hint


class TestInstallExtraHint:
    """A checkout is installed again editable with the extra; a package, by its name."""

    def test_from_a_checkout_its_folder_is_installed_editable_with_the_extra(
        self, tmp_path: Path
    ) -> None:
        checkout = tmp_path / "my checkout"
        checkout.mkdir()
        (checkout / "pyproject.toml").write_text("[project]\nname = 'preform-pipeline'\n")
        hint = install_extra_hint("postgresql", root=checkout, python="/v/bin/python")
        assert hint == ("install the postgresql extra into this checkout's install: "
                        f"/v/bin/python -m pip install -e '{checkout}[postgresql]'")

    def test_an_installed_package_is_named_with_its_extra(self, tmp_path: Path) -> None:
        site_packages = tmp_path / "site-packages"
        site_packages.mkdir()
        hint = install_extra_hint("postgresql", root=site_packages, python="/v/bin/python")
        assert hint == ("install the postgresql extra: /v/bin/python -m pip install "
                        "'preform-pipeline[postgresql]'")
