"""Make the Dashboard's printer groups match the groups the settings declare.

:func:`plan_sync` compares the declared groups (:class:`~preform_pipeline.settings.FleetSettings`)
with the Dashboard's groups and printers, read once, and returns a :class:`SyncPlan`: the steps
that would make them match, in the order :func:`apply_plan` takes them (create groups, set
their remote-print override, add / update / remove members, move printers in, delete groups).
Nothing is changed while planning, so a plan can be shown first and applied after.

What a declaration means, and what it leaves alone:

* groups are matched by name; a declared group the Dashboard lacks is created;
* declared printers are moved into their group, out of whichever group holds them; a printer
  the group holds but the settings do not list stays (the Web API can only move a printer
  *into* a group), and the plan says so;
* declared members are added, and their administrator right set when the settings give one;
  members not listed are removed only with ``prune_members: true``;
* Dashboard groups the settings do not declare are deleted only with ``prune: true``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from preform_pipeline.cloud.models import GroupMember, NewGroup, Printer, PrinterGroup
from preform_pipeline.errors import CloudError, ConfigError
from preform_pipeline.logging import get_logger
from preform_pipeline.settings import FleetGroup, FleetSettings
from preform_pipeline.wording import counted, noun

__all__ = [
    "ACTIONS",
    "GroupApi",
    "SyncPlan",
    "SyncStep",
    "apply_plan",
    "plan_sync",
]

log = get_logger(__name__)

#: Every step's action, in the order a plan applies them.
ACTIONS: Final = (
    "create",
    "set_remote_print",
    "add_member",
    "set_admin",
    "remove_member",
    "move_printers",
    "delete",
)


class GroupApi(Protocol):
    """What a sync needs of the Web API (:class:`~preform_pipeline.cloud.WebApiClient`)."""

    def list_groups(self) -> tuple[PrinterGroup, ...]: ...

    def list_printers(self) -> tuple[Printer, ...]: ...

    def create_group(self, name: str) -> NewGroup: ...

    def update_group(
        self,
        group_id: str,
        *,
        name: str | None = None,
        remote_print_enabled_override: bool | None = None,
    ) -> PrinterGroup: ...

    def delete_group(self, group_id: str) -> None: ...

    def add_group_member(
        self, group_id: str, user: str, *, is_admin: bool | None = None
    ) -> GroupMember: ...

    def update_group_member(self, group_id: str, user: str, *, is_admin: bool) -> GroupMember: ...

    def remove_group_member(self, group_id: str, user: str) -> None: ...

    def move_printers_to_group(self, group_id: str, serials: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class SyncStep:
    """One change: ``group`` is the group's name; ``group_id`` is None for a group this plan
    creates (its id is known once the create step ran)."""

    action: str
    group: str
    group_id: str | None = None
    member: str | None = None
    admin: bool | None = None
    #: For ``set_remote_print``: the override wanted.
    enabled: bool | None = None
    printers: tuple[str, ...] = ()
    #: For a printer move: the group each printer leaves, in ``printers`` order.
    sources: tuple[str, ...] = ()

    def describe(self) -> str:
        quoted = f'"{self.group}"'
        if self.action == "create":
            return f"+ create group {quoted}"
        if self.action == "delete":
            return f"- delete group {quoted}"
        if self.action == "set_remote_print":
            return f"~ group {quoted}: remote printing {'on' if self.enabled else 'off'}"
        if self.action == "add_member":
            role = " as administrator" if self.admin else ""
            return f"+ group {quoted}: add member {self.member}{role}"
        if self.action == "set_admin":
            right = "administrator" if self.admin else "not administrator"
            return f"~ group {quoted}: make {self.member} {right}"
        if self.action == "remove_member":
            return f"- group {quoted}: remove member {self.member}"
        pairs = zip(self.printers, self.sources, strict=True)
        moves = ", ".join(f'{serial} (from "{source}")' for serial, source in pairs)
        return f"> group {quoted}: move in {moves}"


@dataclass(frozen=True)
class SyncPlan:
    """The steps that make the Dashboard match the settings, and notes on what stays as is."""

    steps: tuple[SyncStep, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.steps

    def lines(self) -> list[str]:
        """The plan as a person reads it: one line per step, then the notes."""
        return [step.describe() for step in self.steps] + [f"note: {n}" for n in self.notes]


def plan_sync(api: GroupApi, wanted: FleetSettings) -> SyncPlan:
    """The steps from the Dashboard's groups as they are now to the ``wanted`` ones."""
    groups = _read_whole(api.list_groups())
    serials = {p.serial for p in api.list_printers()} | {s for g in groups for s in g.printers}
    _check_printers(wanted.groups, serials)
    by_name: dict[str, list[PrinterGroup]] = {}
    for group in groups:
        by_name.setdefault(group.name, []).append(group)
    holder = {s: g.name for g in groups for s in g.printers}
    steps: list[SyncStep] = []
    notes: list[str] = []
    for declared in wanted.groups:
        found = by_name.get(declared.name, [])
        if len(found) > 1:
            raise ConfigError(
                f'the Dashboard has {len(found)} groups named "{declared.name}"; fleet sync '
                "matches groups by name",
                hint="rename or delete the extra ones on the Dashboard, then sync again",
            )
        current = found[0] if found else None
        steps += _group_steps(declared, current, holder)
        if current is not None:
            stray = [s for s in current.printers if s not in declared.printers]
            if stray:
                notes.append(
                    f'group "{declared.name}" also holds {", ".join(stray)}, which the settings '
                    "do not list; the Web API can only move a printer into a group, so list it "
                    "under the group it should go to"
                )
    declared_names = {g.name for g in wanted.groups}
    undeclared = [g for g in groups if g.name not in declared_names]
    if wanted.prune:
        steps += [SyncStep("delete", g.name, g.id) for g in undeclared]
    elif undeclared:
        names = ", ".join(f'"{g.name}"' for g in undeclared)
        notes.append(f"left alone (not declared; prune is off): {names}")
    steps.sort(key=lambda step: ACTIONS.index(step.action))
    return SyncPlan(tuple(steps), tuple(notes))


def _a_serial(item: object) -> bool:
    return isinstance(item, str) and bool(item)


def _a_member(item: object) -> bool:
    return isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("user", "email"))


#: What a group's lists must hold to be read whole: its printers serials, its members objects
#: that name a user and an email.
_WHOLE: Final = (("printers", "printer serials", _a_serial), ("memberships", "members", _a_member))


def _read_whole(groups: tuple[PrinterGroup, ...]) -> tuple[PrinterGroup, ...]:
    """``groups``, each read whole. The models read a list of another type as empty, which is
    fine for a report; fleet sync changes the Dashboard by what it reads: a group whose members
    came as something else was taken for a group without members, and the sync set out to add
    them again (session 47's fuzzer). Such an answer stops the plan, and nothing is changed."""
    for group in groups:
        for key, what, fits in _WHOLE:
            value = group.raw.get(key, [])
            if not isinstance(value, list) or not all(fits(item) for item in value):
                raise CloudError(
                    f'the Web API answered group "{group.name}" with {key} that are not a list '
                    f"of {what}: fleet sync changes groups by what it reads, so it stops before "
                    "changing anything",
                    body=group.raw,
                    hint="report the answer with the Web API version in use; sync again once "
                    "the Dashboard answers as its contract says",
                )
    return groups


def _check_printers(declared: Sequence[FleetGroup], serials: set[str]) -> None:
    for group in declared:
        for serial in group.printers:
            if serial not in serials:
                close = difflib.get_close_matches(serial, sorted(serials), n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "list the account's printers with the Dashboard; serials are exact"
                )
                raise ConfigError(
                    f'group "{group.name}": printer {serial!r} is not on the Dashboard account',
                    hint=hint,
                )


def _group_steps(
    declared: FleetGroup, current: PrinterGroup | None, holder: dict[str, str]
) -> list[SyncStep]:
    name = declared.name
    group_id = None if current is None else current.id
    steps: list[SyncStep] = []
    if current is None:
        steps.append(SyncStep("create", name))
    if declared.remote_print is not None and (
        current is None or current.remote_print_enabled_override != declared.remote_print
    ):
        steps.append(
            SyncStep("set_remote_print", name, group_id, enabled=declared.remote_print)
        )
    members = {} if current is None else {m.email.lower(): m for m in current.memberships}
    for member in declared.members:
        present = members.get(member.email.lower())
        if present is None:
            steps.append(SyncStep("add_member", name, group_id, member.email, member.admin))
        elif member.admin is not None and bool(present.is_admin) != member.admin:
            steps.append(SyncStep("set_admin", name, group_id, member.email, member.admin))
    if declared.prune_members and current is not None:
        listed = {m.email.lower() for m in declared.members}
        for present in current.memberships:
            if present.email.lower() not in listed:
                steps.append(SyncStep("remove_member", name, group_id, present.email))
    moving = [s for s in declared.printers if current is None or s not in current.printers]
    if moving:
        steps.append(
            SyncStep(
                "move_printers",
                name,
                group_id,
                printers=tuple(moving),
                sources=tuple(holder.get(s, "no group") for s in moving),
            )
        )
    return steps


def apply_plan(
    api: GroupApi, plan: SyncPlan, *, done: Callable[[SyncStep], None] = lambda _step: None
) -> int:
    """Take the plan's steps in order; ``done`` hears of each one taken. The number taken.

    A group this plan creates starts with the application's user as its administrator, whom
    the plan could not know: once the groups are created they are read again (one request),
    and a declared member who is that user is not added twice (only their right is set).
    A refusal stops the sync there with a CloudError naming the step; the steps before it
    stay applied, and planning again shows what is left.
    """
    created: dict[str, str] = {}
    members: dict[str, dict[str, GroupMember]] | None = None
    for count, step in enumerate(plan.steps):
        try:
            if step.action == "create":
                created[step.group] = api.create_group(step.group).id
            else:
                if created and members is None:
                    members = _members_of(api, set(created.values()))
                group_id = step.group_id or created[step.group]
                present = (members or {}).get(group_id, {})
                _apply_one(api, _as_needed(step, present), group_id)
        except CloudError as exc:
            exc.hint = (
                f"{count} of {counted(len(plan.steps), 'change')} "
                f"{noun(count, 'was', 'were')} applied before this one "
                f"({step.describe()}); {exc.hint or 'see the message'}"
            )
            raise
        log.info("fleet_sync_step", action=step.action, group=step.group)
        done(step)
    return len(plan.steps)


def _members_of(api: GroupApi, ids: set[str]) -> dict[str, dict[str, GroupMember]]:
    return {
        g.id: {m.email.lower(): m for m in g.memberships} for g in api.list_groups() if g.id in ids
    }


def _as_needed(step: SyncStep, present: dict[str, GroupMember]) -> SyncStep:
    """An add_member step for someone already in a new group becomes a right change, or none."""
    if step.action != "add_member" or step.member is None:
        return step
    member = present.get(step.member.lower())
    if member is None:
        return step
    if step.admin is None or bool(member.is_admin) == step.admin:
        return replace(step, action="none")
    return replace(step, action="set_admin")


def _apply_one(api: GroupApi, step: SyncStep, group_id: str) -> None:
    if step.action == "set_remote_print":
        api.update_group(group_id, remote_print_enabled_override=step.enabled)
    elif step.action == "add_member":
        assert step.member is not None
        api.add_group_member(group_id, step.member, is_admin=step.admin)
    elif step.action == "set_admin":
        assert step.member is not None and step.admin is not None
        api.update_group_member(group_id, step.member, is_admin=step.admin)
    elif step.action == "remove_member":
        assert step.member is not None
        api.remove_group_member(group_id, step.member)
    elif step.action == "move_printers":
        api.move_printers_to_group(group_id, step.printers)
    elif step.action == "delete":
        api.delete_group(group_id)
    elif step.action == "none":
        return
    else:  # pragma: no cover - ACTIONS and this function change together
        raise ValueError(f"unknown sync action {step.action!r}")
