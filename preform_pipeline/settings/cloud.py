"""The ``cloud`` settings section: where the Formlabs Web API is, and how much of it to use.

```yaml
cloud:
  client_id_file: secrets/formlabs-client-id      # or client_id; env wins (docs/cloud.md)
  client_secret_file: secrets/formlabs-secret     # or client_secret
  base_url: https://api.formlabs.com
  hourly_budget_share: 0.8                        # of the account's 1,500 requests/hour
  max_requests_per_second: 20
```

Credentials are looked up by :func:`preform_pipeline.cloud.load_credentials` (environment
first), never from the command line; secrets never show in a repr. The client made from this
section is built beside the client (:mod:`preform_pipeline.cloud.factory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from preform_pipeline.settings.reading import SourceOf, resolve_path, unknown_source

__all__ = [
    "DEFAULT_HOURLY_BUDGET_SHARE",
    "DEFAULT_MAX_PER_SECOND",
    "DEFAULT_WEB_API_URL",
    "CloudSettings",
    "read_cloud_settings",
]

DEFAULT_WEB_API_URL: Final = "https://api.formlabs.com"
#: A fifth of the Web API's per-IP limit: other programs on the same machine or NAT share it.
DEFAULT_MAX_PER_SECOND: Final = 20.0
#: Share of the hourly allowance this pipeline spends; the rest stays for the user's other tools.
DEFAULT_HOURLY_BUDGET_SHARE: Final = 0.8


@dataclass(frozen=True)
class CloudSettings:
    """Where the Web API is and how much of its request budget the pipeline may use.

    Credentials set here are the fallback after the environment (``docs/cloud.md``); relative
    ``*_file`` paths are already resolved against the settings file's folder.
    """

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_id_file: Path | None = None
    #: Out of the repr, as the secret is: a secret typed in its file's place is this path.
    client_secret_file: Path | None = field(default=None, repr=False)
    base_url: str = DEFAULT_WEB_API_URL
    #: The Dashboard user the credentials belong to: the Web API's hourly limit is per user,
    #: so applications of one user share one budget when they name it (None: the client id).
    account: str | None = None
    hourly_budget_share: float = DEFAULT_HOURLY_BUDGET_SHARE
    max_requests_per_second: float = DEFAULT_MAX_PER_SECOND
    #: Names this section in error messages (``settings.yaml: cloud``).
    source: str = "settings: cloud"
    #: The ``*_file`` keys as the settings file wrote them, before ``~`` and its folder: a
    #: file that cannot be read is judged by them (a path, or a secret typed in its file's
    #: place: :func:`~preform_pipeline.userpath.secret_file_named`); joined to the folder,
    #: every name reads as a path and a secret written there was said back.
    files_written: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def credentials_section(self) -> dict[str, str]:
        """The section as :func:`~preform_pipeline.cloud.load_credentials` reads it."""
        section: dict[str, str] = {}
        for key in ("client_id", "client_secret", "client_id_file", "client_secret_file"):
            value = getattr(self, key)
            if value is not None:
                section[key] = str(value)
        return section


def read_cloud_settings(
    raw: Mapping[str, Any], base: Path, source_of: SourceOf = unknown_source
) -> CloudSettings:
    """The ``cloud`` section from its raw mapping (already valid against the schema)."""
    defaults = CloudSettings()
    id_file = raw.get("client_id_file")
    secret_file = raw.get("client_secret_file")
    return CloudSettings(
        client_id=raw.get("client_id"),
        client_secret=raw.get("client_secret"),
        client_id_file=resolve_path(str(id_file), base, ["cloud", "client_id_file"], source_of)
        if id_file else None,
        client_secret_file=resolve_path(str(secret_file), base, ["cloud", "client_secret_file"],
                                        source_of, secret=True) if secret_file else None,
        base_url=str(raw.get("base_url", defaults.base_url)).rstrip("/"),
        account=raw.get("account"),
        hourly_budget_share=float(raw.get("hourly_budget_share", defaults.hourly_budget_share)),
        max_requests_per_second=float(
            raw.get("max_requests_per_second", defaults.max_requests_per_second)
        ),
        source=f"{source_of(['cloud'])}: cloud",
        files_written={key: str(raw[key]) for key in ("client_id_file", "client_secret_file")
                       if raw.get(key)},
    )
