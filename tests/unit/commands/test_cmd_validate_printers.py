"""``validate`` and ``plan`` check print targets against the simulated fleet (or a server)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.cli import run
from preform_pipeline.simulator.testing import start_simulator

RECIPE = """\
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
batching:
  max_models_per_build: 1
steps:
  - save_form
  - print:
      printer: {printer}
"""


def invoke(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PREFORM_PIPELINE_SETTINGS", "PREFORM_PIPELINE_SERVER_EXECUTABLE",
                 "PREFORM_PIPELINE_REMOTES"):
        monkeypatch.delenv(name, raising=False)


def recipe(tmp_path: Path, printer: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(printer=printer), encoding="utf-8")
    return path


def fleet_settings(tmp_path: Path) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(json.dumps({"simulator": {"fleet": [
        {"name": "Lab-Form4-A", "machine_type": "FORM-4-0", "material": "FLGPGR05"},
        {"name": "Lab-Form4L", "machine_type": "FORM-4L-0", "material": "FLGPGR05"},
    ]}}), encoding="utf-8")
    return path


def remote_settings(tmp_path: Path) -> Path:
    """Settings of a real PreFormServer elsewhere (a remote): nothing simulated."""
    path = tmp_path / "settings.yaml"
    path.write_text("remotes:\n  - url: http://127.0.0.1:9\n    name: printhost\n",
                    encoding="utf-8")
    return path


class TestMistypedPrinters:
    """A printer name outside the fleet is a problem with a "did you mean"."""

    def test_a_typo_of_a_default_fleet_printer_is_rejected_with_the_name_meant(
        self, tmp_path: Path
    ) -> None:
        code, text = invoke("validate", str(recipe(tmp_path, "Form4-CapabelClam")))
        assert code == 1
        assert "$.steps[1].print.printer: unknown printer 'Form4-CapabelClam'" in text
        assert "did you mean 'Form4-CapableClam'?" in text

    def test_the_declared_fleet_is_what_counts(self, tmp_path: Path) -> None:
        settings = str(fleet_settings(tmp_path))
        assert invoke("validate", str(recipe(tmp_path, "Lab-Form4-A")), "--settings",
                      settings)[0] == 0
        code, text = invoke("validate", str(recipe(tmp_path, "Form4-CapableClam")),
                            "--settings", settings)
        assert code == 1 and "the declared simulated fleet" in text

    def test_each_name_of_a_list_is_checked_and_a_wrong_machine_type_is_named(
        self, tmp_path: Path
    ) -> None:
        path = recipe(tmp_path, "[Lab-Form4-A, Lab-Form4-B, Lab-Form4L]")
        code, text = invoke("validate", str(path), "--settings", str(fleet_settings(tmp_path)))
        assert code == 1
        assert "printer[1]: unknown printer 'Lab-Form4-B'" in text
        assert "did you mean 'Lab-Form4-A'?" in text
        assert "printer[2]: printer 'Lab-Form4L' is a FORM-4L-0, not a FORM-4-0" in text

    def test_auto_templates_and_queues_pass(self, tmp_path: Path) -> None:
        for target in ("auto", "'{printer}'", "SimulatedQueue-Form4"):
            code, text = invoke("validate", str(recipe(tmp_path, target)))
            assert code == 0, (target, text)

    def test_plan_refuses_the_typo_too(self, tmp_path: Path, sample_models_dir: Path) -> None:
        code, text = invoke("plan", str(recipe(tmp_path, "SimulatedForm4-11")),
                            str(sample_models_dir / "parts"))
        assert code == 1
        assert "unknown printer 'SimulatedForm4-11'" in text

    def test_plan_checks_against_the_fleet_its_settings_declare(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        # Session 47's trial: `validate --settings` took a recipe printing to the lab's
        # declared fleet, and `plan --settings` with the same file refused it as "not in the
        # default simulated fleet", planning nothing.
        settings = str(fleet_settings(tmp_path))
        models = str(sample_models_dir / "parts" / "cube_with_hole.stl")
        declared = invoke("plan", str(recipe(tmp_path, "Lab-Form4-A")), models,
                          "--settings", settings)
        default = invoke("plan", str(recipe(tmp_path, "Form4-CapableClam")), models,
                         "--settings", settings)
        assert declared[0] == 0, declared[1]
        assert default[0] == 1
        assert ("unknown printer 'Form4-CapableClam' (not in the declared simulated fleet"
                in default[1])

    def test_settings_of_a_real_server_check_no_printer_against_the_simulated_fleet(
        self, tmp_path: Path
    ) -> None:
        # A real fleet is known to its server (``--server``), not to the settings: the lab's
        # own printer is no "unknown printer" of the simulator's default fleet.
        code, text = invoke("validate", str(recipe(tmp_path, "Lab-Form4-A")), "--settings",
                            str(remote_settings(tmp_path)))
        assert code == 0, text


class TestAgainstAServer:
    """With ``--server``, the server's devices are what counts (a real simulator process)."""

    def test_the_servers_devices_decide(self, tmp_path: Path) -> None:
        declared = json.dumps([{"serial": "Shop-Form4", "machine_type_id": "FORM-4-0",
                                "product_name": "Form 4", "ip_address": "192.0.2.7",
                                "material_code": "FLGPGR05"}])
        with start_simulator("--fleet-printers", declared, fleet_dir=tmp_path / "fleet") as sim:
            ok = invoke("validate", str(recipe(tmp_path, "192.0.2.7")), "--server", sim.url)
            code, text = invoke("validate", str(recipe(tmp_path, "Shop-From4")),
                                "--server", sim.url)
        assert ok[0] == 0, ok[1]
        assert code == 1
        assert f"(not in the devices of {sim.url}) (did you mean 'Shop-Form4'?)" in text

    def test_a_queue_is_not_refused_by_a_server_that_lists_no_queues(
        self, tmp_path: Path, repo_root: Path
    ) -> None:
        # A server lists Fleet Control queues only once logged in to the Dashboard: the
        # shipped dental recipe failed `validate --server` against a simulator started by hand
        # ("unknown printer '6f1c...' (not in the devices of ...)"; session 30).
        dental = repo_root / "recipes" / "dental-models-form4.yaml"
        queue = "6f1c2d3e-0000-4000-8000-00000000d3a1"
        typo = recipe(tmp_path, "Form4-CapabelClam").read_text(encoding="utf-8").replace(
            "printer: Form4-CapabelClam", f"fleet_group: {queue[:-2]}b1")
        (tmp_path / "queue.yaml").write_text(typo, encoding="utf-8")
        with start_simulator(fleet_dir=tmp_path / "fleet") as sim:
            logged_out = invoke("validate", str(dental), "--server", sim.url)
            typo_logged_out = invoke("validate", str(tmp_path / "queue.yaml"), "--server",
                                     sim.url)
            with PreFormClient(sim.url) as client:
                client.login("lab@example.com", "any")
            logged_in = invoke("validate", str(dental), "--server", sim.url)
            typo_logged_in = invoke("validate", str(tmp_path / "queue.yaml"), "--server",
                                    sim.url)
        assert logged_out[0] == 0, logged_out[1]
        assert typo_logged_out[0] == 0, typo_logged_out[1]  # the server checks it at the send
        assert logged_in[0] == 0, logged_in[1]
        assert typo_logged_in[0] == 1
        assert (f"$.steps[1].print.fleet_group: unknown printer '{queue[:-2]}b1' (not in the "
                f"devices of {sim.url}) (did you mean") in typo_logged_in[1]
