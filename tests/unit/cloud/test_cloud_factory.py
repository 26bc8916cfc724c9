"""Credentials for the Web API client made from the ``cloud`` settings section."""

from __future__ import annotations

import pytest

from preform_pipeline.cloud import credentials_configured, load_cloud_credentials
from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import CloudSettings


class TestCredentials:
    """The environment wins; half a pair is an error; none at all means no Web API."""

    def test_the_environment_counts_as_configured_and_wins(self) -> None:
        cloud = CloudSettings(client_id="from-file", client_secret="file-secret")
        env = {"PREFORM_PIPELINE_CLIENT_ID": "from-env",
               "PREFORM_PIPELINE_CLIENT_SECRET": "env-secret"}
        assert credentials_configured(cloud, env)
        assert load_cloud_credentials(cloud, env).client_id == "from-env"

    def test_a_missing_secret_names_the_variables_to_set(self) -> None:
        cloud = CloudSettings()
        env = {"PREFORM_PIPELINE_CLIENT_ID": "only-the-id"}
        assert credentials_configured(cloud, env)
        with pytest.raises(ConfigError, match="PREFORM_PIPELINE_CLIENT_SECRET"):
            load_cloud_credentials(cloud, env)
