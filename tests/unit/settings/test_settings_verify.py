"""The ``cloud`` and ``verify`` settings sections and the Web API client made from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from preform_pipeline.cloud import credentials_configured, load_cloud_credentials, make_web_client
from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import load_settings
from preform_pipeline.verify.notify import make_notifier


def _settings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestSections:
    """Both sections load with defaults, paths relative to the file, and checked values."""

    def test_defaults_need_no_file(self) -> None:
        settings = load_settings(None, env={})
        assert settings.cloud.base_url == "https://api.formlabs.com"
        assert (settings.verify.interval_s, settings.verify.deadline_s) == (120.0, 86400.0)
        assert not settings.verify.notifications.enabled
        assert not credentials_configured(settings.cloud, {})

    def test_every_key_is_read(self, tmp_path: Path) -> None:
        (tmp_path / "secret.txt").write_text("s3cr3t\n", encoding="utf-8")
        path = _settings(tmp_path, """\
cloud:
  client_id: lab-app
  client_secret_file: secret.txt
  base_url: http://127.0.0.1:44389/
  hourly_budget_share: 0.5
  max_requests_per_second: 10
verify:
  interval_s: 60
  deadline_s: 43200
  requests_per_hour: 30
  lookup_grace_s: 120
  notifications:
    webhook_url: https://hooks.example.com/T0/B0/xyz?token=abc
    command: "notify-lab --channel 'print room'"
""")
        settings = load_settings(path, env={})
        cloud, verify = settings.cloud, settings.verify
        assert cloud.client_secret_file == tmp_path / "secret.txt"
        assert cloud.base_url == "http://127.0.0.1:44389"
        credentials = load_cloud_credentials(cloud, {})
        assert (credentials.client_id, credentials.client_secret) == ("lab-app", "s3cr3t")
        assert (verify.interval_s, verify.deadline_s, verify.requests_per_hour,
                verify.lookup_grace_s) == (60, 43200, 30, 120)
        assert verify.notifications.command == ("notify-lab", "--channel", "print room")
        with make_web_client(cloud, credentials) as client:
            assert client.limiter.hourly_limit == 750
            assert client.limiter.max_per_second == 10
        notifier = make_notifier(verify.notifications)
        assert notifier is not None and notifier.enabled
        notifier.close()

    def test_secrets_stay_out_of_the_settings_repr(self, tmp_path: Path) -> None:
        path = _settings(tmp_path, """\
cloud: {client_id: lab-app, client_secret: s3cr3t}
verify: {notifications: {webhook_url: "https://hooks.example.com/T0/xyz?token=abc"}}
""")
        text = repr(load_settings(path, env={}))
        assert "s3cr3t" not in text and "abc" not in text and "xyz" not in text

    @pytest.mark.parametrize(
        ("text", "where"),
        [
            ("cloud: {hourly_budget_share: 1.5}\n", "$.cloud.hourly_budget_share"),
            ("cloud: {base_url: api.formlabs.com}\n", "$.cloud.base_url"),
            ("verify: {interval_s: 0}\n", "$.verify.interval_s"),
            ("verify: {requests_per_hour: 5000}\n", "$.verify.requests_per_hour"),
            ("verify: {notifications: {hook: x}}\n", "$.verify.notifications.hook"),
            ("cloud: {client_secret_flie: x}\n", "did you mean 'client_secret_file'"),
        ],
    )
    def test_bad_values_are_refused_with_their_path(
        self, tmp_path: Path, text: str, where: str
    ) -> None:
        with pytest.raises(ConfigError, match=re.escape(where)):
            load_settings(_settings(tmp_path, text), env={})
