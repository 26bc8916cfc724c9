"""Which Local API versions this client speaks, and the check that refuses the others.

The range is a ``(minimum, below)`` pair of version strings: the minimum is included, the
upper bound is not. The contract this client is written against is 0.9.12; 0.9.x servers only
add operations and fields, while a 1.0 release may change shapes, so it is refused until the
client has been checked against it.
"""

from __future__ import annotations

import re
from typing import Final

from preform_pipeline.errors import RequestInfo, UnsupportedApiVersionError

__all__ = [
    "CONTRACT_API_VERSION",
    "DEFAULT_SUPPORTED_API_VERSIONS",
    "VersionRange",
    "describe_range",
    "is_supported",
    "no_version_endpoint",
    "not_a_version_answer",
    "parse_version",
    "require_supported",
]

#: ``(minimum included, upper bound excluded)``.
VersionRange = tuple[str, str]

#: The Local API version of the contract the client was written and tested against.
CONTRACT_API_VERSION: Final = "0.9.12"

DEFAULT_SUPPORTED_API_VERSIONS: Final[VersionRange] = ("0.9.0", "1.0.0")

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"0.9.12"`` -> ``(0, 9, 12)``; missing parts are 0 and a suffix (``-beta``) is ignored."""
    match = _VERSION.match(text)
    if match is None:
        raise ValueError(f"not a version number: {text!r}")
    major, minor, patch = (int(part) if part else 0 for part in match.groups())
    return (major, minor, patch)


def describe_range(supported: VersionRange) -> str:
    return f">={supported[0]},<{supported[1]}"


def is_supported(version: str, supported: VersionRange = DEFAULT_SUPPORTED_API_VERSIONS) -> bool:
    try:
        parsed = parse_version(version)
    except ValueError:
        return False
    return parse_version(supported[0]) <= parsed < parse_version(supported[1])


def no_version_endpoint(
    status: int, supported: VersionRange = DEFAULT_SUPPORTED_API_VERSIONS, *,
    request: RequestInfo | None = None,
) -> UnsupportedApiVersionError:
    """The error for a server with no ``GET /`` (every Local API in range has it)."""
    return UnsupportedApiVersionError(
        f"the server has no Local API version endpoint (GET / answered {status}): it is not a "
        f"PreFormServer, or one older than Local API {supported[0]}; this client supports "
        f"{describe_range(supported)} (written against {CONTRACT_API_VERSION})",
        request=request,
        hint="check that the address belongs to a PreFormServer, and run a release whose API "
        "version is in that range",
    )


def not_a_version_answer(
    what: str, supported: VersionRange = DEFAULT_SUPPORTED_API_VERSIONS, *,
    request: RequestInfo | None = None,
) -> UnsupportedApiVersionError:
    """The error for a ``GET /`` answered 200, but with ``what`` (``an HTML page titled
    "DiskStation"``) instead of the version every PreFormServer in range answers there."""
    return UnsupportedApiVersionError(
        f"the server answered GET / with {what}, where a PreFormServer answers its Local API "
        f'version (JSON {{"version": "{CONTRACT_API_VERSION}"}}; this client supports '
        f"{describe_range(supported)}): another web server answers at this address (a NAS's "
        "or a router's page, or a wrong port)",
        request=request,
        hint="check the host and the port, and that PreFormServer runs there",
    )


def require_supported(
    version: str,
    supported: VersionRange = DEFAULT_SUPPORTED_API_VERSIONS,
    *,
    request: RequestInfo | None = None,
) -> tuple[int, int, int]:
    """The parsed ``version``, or :class:`UnsupportedApiVersionError` saying what is accepted."""
    wanted = describe_range(supported)
    try:
        parsed = parse_version(version)
    except ValueError:
        raise UnsupportedApiVersionError(
            f"the server reports Local API version {version!r}, which is not a version number; "
            f"this client supports {wanted}",
            request=request,
            hint="check that the port belongs to a PreFormServer",
        ) from None
    if not is_supported(version, supported):
        raise UnsupportedApiVersionError(
            f"the server speaks Local API {version}; this client supports {wanted} "
            f"(written against {CONTRACT_API_VERSION})",
            request=request,
            hint=(
                "run a PreFormServer release whose API version is in that range, or upgrade "
                "preform-pipeline"
            ),
        )
    return parsed
