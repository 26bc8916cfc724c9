"""Web API application credentials (client id and secret) from settings, environment or files.

Each of the two values is looked up on its own, first source that has it wins:

1. the environment variable itself (``PREFORM_PIPELINE_CLIENT_SECRET``),
2. the environment variable naming a file that holds it (``PREFORM_PIPELINE_CLIENT_SECRET_FILE``),
3. the settings section's value (``client_secret``),
4. the settings section's file (``client_secret_file``).

The environment wins over the settings file because it is the more specific of the two: a
deployment sets it for one run or one service without editing the shared settings. Setting a
value and its ``_FILE`` twin in the same place is refused as ambiguous rather than guessed.
Secrets are never taken from the command line, where every user of the machine can read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preform_pipeline.errors import ConfigError
from preform_pipeline.userpath import expand_user, secret_file_named

__all__ = [
    "ENV_CLIENT_ID",
    "ENV_CLIENT_ID_FILE",
    "ENV_CLIENT_SECRET",
    "ENV_CLIENT_SECRET_FILE",
    "SETTINGS_CLIENT_ID",
    "SETTINGS_CLIENT_ID_FILE",
    "SETTINGS_CLIENT_SECRET",
    "SETTINGS_CLIENT_SECRET_FILE",
    "Credentials",
    "load_credentials",
]

ENV_CLIENT_ID = "PREFORM_PIPELINE_CLIENT_ID"
ENV_CLIENT_SECRET = "PREFORM_PIPELINE_CLIENT_SECRET"
ENV_CLIENT_ID_FILE = "PREFORM_PIPELINE_CLIENT_ID_FILE"
ENV_CLIENT_SECRET_FILE = "PREFORM_PIPELINE_CLIENT_SECRET_FILE"

#: Keys read from the settings section handed to :func:`load_credentials`.
SETTINGS_CLIENT_ID = "client_id"
SETTINGS_CLIENT_SECRET = "client_secret"
SETTINGS_CLIENT_ID_FILE = "client_id_file"
SETTINGS_CLIENT_SECRET_FILE = "client_secret_file"

_HIDDEN = "[hidden]"


@dataclass(frozen=True)
class Credentials:
    """A Dashboard application's client id and secret; the secret never shows in a repr.

    ``id_source`` and ``secret_source`` say where :func:`load_credentials` found each value
    (``$PREFORM_PIPELINE_CLIENT_SECRET_FILE (/run/secrets/formlabs)``), so a refusal can name
    the setting to correct; None when the values were handed over directly.
    """

    client_id: str
    client_secret: str = field(repr=False)
    id_source: str | None = field(default=None, compare=False)
    secret_source: str | None = field(default=None, compare=False)

    def where_to_check(self) -> str:
        """What to check when the Web API refuses these credentials: the settings they came
        from, or every place they may be set."""
        if self.id_source is None or self.secret_source is None:
            return (f"check the client id and secret ({ENV_CLIENT_ID} / {ENV_CLIENT_SECRET}, "
                    "their _FILE forms, or the settings' cloud section)")
        return (f"check the client id {self.client_id!r} (from {self.id_source}) and the "
                f"client secret (from {self.secret_source})")

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, client_secret={_HIDDEN})"

    __str__ = __repr__


@dataclass(frozen=True)
class _Lookup:
    """How one value is found: its environment names and its settings keys."""

    what: str
    env: str
    env_file: str
    key: str
    key_file: str


_CLIENT_ID = _Lookup(
    "client id", ENV_CLIENT_ID, ENV_CLIENT_ID_FILE, SETTINGS_CLIENT_ID, SETTINGS_CLIENT_ID_FILE
)
_CLIENT_SECRET = _Lookup(
    "client secret",
    ENV_CLIENT_SECRET,
    ENV_CLIENT_SECRET_FILE,
    SETTINGS_CLIENT_SECRET,
    SETTINGS_CLIENT_SECRET_FILE,
)


def load_credentials(
    settings_section: Mapping[str, Any] | None,
    env: Mapping[str, str],
    *,
    settings_source: str = "settings",
    base_dir: Path | None = None,
    files_written: Mapping[str, str] | None = None,
) -> Credentials:
    """Find the client id and secret (module docstring gives the order); ConfigError if absent.

    ``settings_source`` names the settings section in messages (``settings.yaml: cloud``);
    ``base_dir`` anchors relative ``*_file`` paths from the settings file (defaults to the
    working directory). Environment ``*_FILE`` paths are taken as given. ``files_written``:
    the section's ``*_file`` keys as the settings file wrote them, when the section holds
    them joined to its folder already (:class:`~preform_pipeline.settings.CloudSettings`),
    for the error when such a file cannot be read.
    """
    section: Mapping[str, Any] = settings_section or {}
    client_id, id_source = _find(_CLIENT_ID, section, env, settings_source, base_dir,
                                 files_written)
    client_secret, secret_source = _find(_CLIENT_SECRET, section, env, settings_source,
                                         base_dir, files_written)
    found = ((_CLIENT_ID, client_id), (_CLIENT_SECRET, client_secret))
    missing = [lookup for lookup, value in found if value is None]
    if missing:
        names = " and ".join(m.what for m in missing)
        ways = "; ".join(
            f"{m.env} (or {m.env_file} naming a file that holds it, or {m.key!r} in the "
            f"settings)"
            for m in missing
        )
        raise ConfigError(
            f"no Web API {names} configured",
            source="environment",
            hint=f"set {ways}; create application credentials on the Dashboard's "
            "Developer Tools page",
        )
    assert client_id is not None and client_secret is not None
    return Credentials(client_id, client_secret, id_source=id_source,
                       secret_source=secret_source)


def _find(
    lookup: _Lookup,
    section: Mapping[str, Any],
    env: Mapping[str, str],
    settings_source: str,
    base_dir: Path | None,
    files_written: Mapping[str, str] | None = None,
) -> tuple[str | None, str]:
    """The value and where it was found (a setting's name, and the file that held it).
    ``files_written``: as :func:`load_credentials` takes it."""
    direct = env.get(lookup.env) or None
    from_file = env.get(lookup.env_file) or None
    if direct is not None and from_file is not None:
        raise ConfigError(
            f"both {lookup.env} and {lookup.env_file} are set",
            source="environment",
            hint=f"set only one of them for the {lookup.what}",
        )
    if direct is not None:
        return direct, f"${lookup.env}"
    if from_file is not None:
        named_by = f"${lookup.env_file}"
        path = expand_user(from_file, source=f"environment variable {lookup.env_file}",
                           secret=True)
        return (_read_secret_file(path, lookup, named_by, from_file),
                f"{named_by} ({from_file})")

    value = section.get(lookup.key)
    path_value = section.get(lookup.key_file)
    for key, given in ((lookup.key, value), (lookup.key_file, path_value)):
        if given is not None and not isinstance(given, str):
            raise ConfigError(
                f"{key!r} must be a string, not {type(given).__name__}",
                source=settings_source,
                hint=f"quote the {lookup.what} in the settings file",
            )
    value = value or None
    path_value = path_value or None
    if value is not None and path_value is not None:
        raise ConfigError(
            f"both {lookup.key!r} and {lookup.key_file!r} are set",
            source=settings_source,
            hint=f"keep only one of them for the {lookup.what}",
        )
    if value is not None:
        return str(value), f"{settings_source}: {lookup.key}"
    if path_value is not None:
        # The rule every settings path follows (settings.reading.resolve_path): ``~`` first,
        # then a relative path is the settings folder's.
        path = expand_user(str(path_value), source=settings_source, key=lookup.key_file,
                           secret=True)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        named_by = f"{settings_source}: {lookup.key_file}"
        as_written = (files_written or {}).get(lookup.key_file, str(path_value))
        return (_read_secret_file(path, lookup, named_by, as_written),
                f"{named_by} ({path})")
    return None, ""


def _read_secret_file(path: Path, lookup: _Lookup, named_by: str, written: str) -> str:
    """The secret in the file at ``path``, which ``named_by`` gave as ``written``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the {lookup.what} file named by {named_by}: "
            f"{exc.strerror or 'it cannot be opened'}",
            source=secret_file_named(written, path),
            hint="check that the file exists and that this user may read it",
        ) from None
    except UnicodeDecodeError:
        # Not the decoder's text: it quotes the byte it could not read, a part of the secret.
        raise ConfigError(
            f"the {lookup.what} file named by {named_by} is not UTF-8 text", source=str(path),
            hint=f"save the {lookup.what} file as UTF-8",
        ) from None
    # Editors and `echo` add a final newline that is not part of the value; other whitespace
    # is kept because it could be.
    value = text.rstrip("\r\n")
    if not value:
        raise ConfigError(
            f"the {lookup.what} file named by {named_by} is empty",
            source=str(path),
            hint=f"write the {lookup.what} into the file",
        )
    return value
