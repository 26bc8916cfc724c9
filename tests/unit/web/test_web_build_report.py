"""A build's page shows its report whatever suffix the recipe gave it (a real SQLite store):
the dashboard read only a ``.json`` beside the ``.form``, so a ``{build}.txt`` report showed
nothing of the run that prepared the build."""

from __future__ import annotations

import json
from pathlib import Path

from preform_pipeline.executor.report_beside import BUILD_REPORT_FORMAT
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.web.views import build_page
from tests.unit.dispatch.test_dispatch_sender_claims import _waiting


class TestABuildsPage:
    def test_a_report_named_txt_is_shown(self, store: SqliteJobStore, tmp_path: Path) -> None:
        form = tmp_path / "unit-001.form"
        form.write_bytes(b"form")
        build = _waiting(store, form, "unit-001")
        form.with_suffix(".txt").write_text(json.dumps({
            "format": BUILD_REPORT_FORMAT, "job_key": build.job_key,
            "steps_done": ["create_scene", "import_models", "save_form"],
            "machine_type": "FORM-4-0"}), encoding="utf-8")

        page = build_page(store, build.id)

        assert page.steps_done == ("create_scene", "import_models", "save_form")
        assert page.report["machine_type"] == "FORM-4-0"
