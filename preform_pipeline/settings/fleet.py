"""The ``fleet`` section: Dashboard printer groups as code (``preform-pipeline fleet sync``,
docs/fleet.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from preform_pipeline.errors import ConfigError
from preform_pipeline.yamlerrors import format_json_path

__all__ = ["FleetGroup", "FleetMember", "FleetSettings", "read_fleet_settings"]



@dataclass(frozen=True)
class FleetMember:
    """A user of a declared group; ``admin`` None leaves the right as the Dashboard has it."""

    email: str
    admin: bool | None = None


@dataclass(frozen=True)
class FleetGroup:
    """A printer group the settings declare: its printers, members and remote-print override."""

    name: str
    printers: tuple[str, ...] = ()
    members: tuple[FleetMember, ...] = ()
    prune_members: bool = False
    remote_print: bool | None = None


@dataclass(frozen=True)
class FleetSettings:
    """The ``fleet`` section; ``declared`` is False when the settings have none."""

    groups: tuple[FleetGroup, ...] = ()
    prune: bool = False
    declared: bool = False


def read_fleet_settings(
    raw: Mapping[str, Any] | None,
    source_of: Callable[[Sequence[str | int]], str] = lambda _parts: "settings",
) -> FleetSettings:
    """The ``fleet`` section (already valid against the schema) with its cross-checks: group
    names unique, a printer in one group only, a member listed once per group."""
    if raw is None:
        return FleetSettings()
    groups: list[FleetGroup] = []
    owner: dict[str, str] = {}
    for index, item in enumerate(raw.get("groups", [])):
        where: list[str | int] = ["fleet", "groups", index]
        name = str(item["name"])
        if any(g.name == name for g in groups):
            raise ConfigError(f"{format_json_path(where)}: a second group is named {name!r}",
                              source=source_of(where), hint="give each group its own name")
        for serial in item.get("printers", []):
            if serial in owner:
                raise ConfigError(
                    f"{format_json_path(where)}: printer {serial!r} is already in group "
                    f"{owner[serial]!r}",
                    source=source_of(where),
                    hint="a printer belongs to one group: list it under one of them",
                )
            owner[serial] = name
        members: list[FleetMember] = []
        for member in item.get("members", []):
            email, admin = (member, None) if isinstance(member, str) else (
                member["email"], member.get("admin")
            )
            if any(m.email.lower() == email.lower() for m in members):
                raise ConfigError(f"{format_json_path(where)}: member {email!r} is listed twice",
                                  source=source_of(where), hint="list each member once")
            members.append(FleetMember(email=email, admin=admin))
        groups.append(
            FleetGroup(
                name=name,
                printers=tuple(item.get("printers", [])),
                members=tuple(members),
                prune_members=bool(item.get("prune_members", False)),
                remote_print=item.get("remote_print"),
            )
        )
    return FleetSettings(groups=tuple(groups), prune=bool(raw.get("prune", False)), declared=True)
