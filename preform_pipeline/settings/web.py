"""The ``web`` settings section: the dashboard's address and who may use it (docs/web.md).

```yaml
web:
  host: 127.0.0.1           # the default; 0.0.0.0 opens it to the lab network
  port: 8765
  refresh_s: 5              # how often open pages refresh their live parts
  allowed_hosts: [dash.lab.example]   # names it is reached by besides its address (a proxy)
  users:
    - name: alice
      role: operator        # may approve, reject, retry, cancel and settle
      secret_hash: "scrypt$16384$8$1$<salt>$<hash>"   # preform-pipeline serve --hash-secret
    - name: wall-tablet
      role: viewer          # may look only
      secret_file: secrets/wall.token                  # read and hashed at load
```

A user's secret (a password typed into the login page, or a token sent as
``Authorization: Bearer NAME:TOKEN``) is held only as a scrypt hash: written hashed into the
file, or read from ``secret_file`` / the environment variable ``secret_env`` and hashed at once.
The plain secret is never kept, printed or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings.reading import BaseDir, SourceOf, resolve_path, unknown_source
from preform_pipeline.textfiles import read_small_text
from preform_pipeline.userpath import secret_file_named
from preform_pipeline.yamlerrors import format_json_path

__all__ = [
    "DEFAULT_WEB_HOST",
    "DEFAULT_WEB_PORT",
    "DEFAULT_WEB_REFRESH_S",
    "ROLES",
    "WebSettings",
    "WebUser",
    "check_secret",
    "hash_secret",
    "read_web_settings",
]

DEFAULT_WEB_HOST: Final = "127.0.0.1"
DEFAULT_WEB_PORT: Final = 8765
DEFAULT_WEB_REFRESH_S: Final = 5.0
#: viewer: every page; operator: also every action.
ROLES: Final = ("viewer", "operator")

# scrypt's interactive-login cost (2^14, 8, 1): tens of milliseconds per check, memory-hard.
_SCRYPT_N: Final = 2**14
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SALT_BYTES: Final = 16
_HASH_BYTES: Final = 32
_SCHEME: Final = "scrypt"
#: A secret file holds one line; a larger one is the wrong file.
_MAX_SECRET_FILE_BYTES: Final = 64 * 1024


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (hex) of ``secret`` with a fresh salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, dklen=_HASH_BYTES)
    return f"{_SCHEME}${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def _parts(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    fields = encoded.split("$")
    if len(fields) != 6 or fields[0] != _SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in fields[1:4])
        return n, r, p, bytes.fromhex(fields[4]), bytes.fromhex(fields[5])
    except ValueError:
        return None


def check_secret(secret: str, encoded: str) -> bool:
    """True when ``secret`` hashes to ``encoded`` (compared in constant time)."""
    parts = _parts(encoded)
    if parts is None:
        return False
    n, r, p, salt, expected = parts
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                            maxmem=256 * n * r + 1024 * 1024)
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class WebUser:
    """One dashboard user: name, role, and the scrypt hash of their secret."""

    name: str
    role: str
    secret_hash: str

    def __repr__(self) -> str:  # the hash is not secret, but it has no business in logs
        return f"WebUser(name={self.name!r}, role={self.role!r})"

    @property
    def operator(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class WebSettings:
    """Where the dashboard listens and who may use it (module docstring)."""

    host: str = DEFAULT_WEB_HOST
    port: int = DEFAULT_WEB_PORT
    refresh_s: float = DEFAULT_WEB_REFRESH_S
    users: tuple[WebUser, ...] = ()
    #: Host names the dashboard answers to besides its own address (web/hosts.py).
    allowed_hosts: tuple[str, ...] = ()


def _secret_of(
    raw: Mapping[str, Any], where: Sequence[str | int], base: Path, source: str,
    env: Mapping[str, str],
) -> str:
    if "secret_hash" in raw:
        encoded = str(raw["secret_hash"])
        if _parts(encoded) is None:
            raise ConfigError(
                f"{format_json_path([*where, 'secret_hash'])}: not a scrypt hash", source=source,
                hint="make one with: preform-pipeline serve --hash-secret (reads it from stdin)",
            )
        return encoded
    if "secret_file" in raw:
        path = resolve_path(str(raw["secret_file"]), base, [*where, "secret_file"],
                            lambda _key: source, secret=True)
        try:
            text = read_small_text(path, max_bytes=_MAX_SECRET_FILE_BYTES).strip()
        except OSError as exc:
            named = secret_file_named(str(raw["secret_file"]), path)
            raise ConfigError(f"{format_json_path([*where, 'secret_file'])}: cannot read the "
                              f"secret file {named}: {exc.strerror}",
                              source=source, hint="check the path and its permissions") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{format_json_path([*where, 'secret_file'])}: the secret file "
                              f"{path} is not UTF-8 text", source=source,
                              hint="write the secret as plain text") from None
    else:
        name = str(raw["secret_env"])
        text = env.get(name, "").strip()
        if not text:
            raise ConfigError(f"{format_json_path([*where, 'secret_env'])}: the environment "
                              f"variable {name} is not set or empty",
                              source=source, hint=f"export {name} before starting")
    if not text:
        key = "secret_file" if "secret_file" in raw else "secret_env"
        raise ConfigError(f"{format_json_path([*where, key])}: the secret of web user "
                          f"{raw.get('name')!r} is empty",
                          source=source, hint="write a secret of at least 12 characters")
    return hash_secret(text)


def read_web_settings(
    raw: Mapping[str, Any],
    base_dir: BaseDir,
    source_of: SourceOf = unknown_source,
    env: Mapping[str, str] = os.environ,
) -> WebSettings:
    """The section from its raw mapping (already valid against the schema)."""
    users: list[WebUser] = []
    seen: set[str] = set()
    for n, item in enumerate(raw.get("users", ())):
        where = ("web", "users", n)
        name = str(item["name"])
        if name in seen:
            raise ConfigError(f"$.web.users[{n}]: the user name {name!r} is used twice",
                              source=source_of(where), hint="give each user one entry")
        seen.add(name)
        secret = _secret_of(item, where, base_dir(["web"]), source_of(where), env)
        users.append(WebUser(name, str(item["role"]), secret))
    return WebSettings(
        host=str(raw.get("host", DEFAULT_WEB_HOST)),
        port=int(raw.get("port", DEFAULT_WEB_PORT)),
        refresh_s=float(raw.get("refresh_s", DEFAULT_WEB_REFRESH_S)),
        users=tuple(users),
        allowed_hosts=tuple(str(h) for h in raw.get("allowed_hosts", ())),
    )
