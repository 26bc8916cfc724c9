"""Printer groups the Dashboard simulator lets a client change: the rules and their storage.

The rules are functions over a list of ``Workgroup`` records (the shape ``GET /groups/``
answers), so the Dashboard simulator (a real HTTP server) and the in-process fake apply the
same ones. Each returns the answer body the Web API documents for its operation (``NewWorkgroup``
on create, ``Workgroup`` on update, ``WorkgroupMembership`` for members) or raises
:class:`GroupRefusal` with the status and a Django REST framework shaped body:

* an unknown group or member: 404 ``{"detail": "Not found."}``;
* a bad body: 400 with one list of messages per field (``{"name": ["This field is
  required."]}``), as DRF's serializers answer; the contract documents the fields and their
  limits (name 1 to 40 characters, member emails, a UUID ``target_group``, a list of printers);
* a change the Dashboard would refuse: 400 ``{"detail": ...}``. The simulator's own choices,
  since the contract is silent: a group that still holds printers cannot be deleted (printers
  always belong to a group), and a group keeps at least one administrator.

:class:`GroupTable` keeps the Dashboard's table in ``<fleet_dir>/dashboard-groups.json`` once a
client changed it; until then the groups are those of ``printers.json`` (see
:mod:`.fleet_view`). The PreFormServer simulator never reads that file.
"""

from __future__ import annotations

import codecs
import email.policy
import json
import threading
import uuid
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

from preform_pipeline.simulator.atomic import atomic_write_bytes
from preform_pipeline.simulator.protocol import SimError

from . import records
from .records import Record

__all__ = [
    "GROUPS_FILE",
    "GROUP_NAME_MAX",
    "GroupRefusal",
    "GroupTable",
    "add_member",
    "create_group",
    "delete_group",
    "find_group",
    "move_printers",
    "parse_body",
    "remove_member",
    "update_group",
    "update_member",
]

GROUPS_FILE: Final = "dashboard-groups.json"
_FORMAT: Final = "preform-pipeline-dashboard-groups"
#: The contract caps a group name at 40 characters.
GROUP_NAME_MAX: Final = 40
_NOT_FOUND: Final = {"detail": "Not found."}
_REQUIRED: Final = "This field is required."
_BLANK: Final = "This field may not be blank."
_FORM: Final = "application/x-www-form-urlencoded"
_MULTIPART: Final = "multipart/form-data"


class GroupRefusal(Exception):
    """A group operation refused: ``status`` and the JSON ``body`` to answer with."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(status, dict(body))
        self.status = status
        self.body = dict(body)


def _invalid(field: str, message: str) -> GroupRefusal:
    return GroupRefusal(400, {field: [message]})


def _charset(parameters: str) -> str:
    """The ``charset`` of a Content-Type's parameters, as Django reads it: UTF-8 unless a
    charset Python knows is named."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip('"')).name
            except LookupError:
                break
    return "utf-8"


def _strict_constant(name: str) -> Any:
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


def parse_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    """A request body as a mapping: JSON or a form, the encodings the contract lists.

    Every group change documents ``application/json``, ``application/x-www-form-urlencoded``
    and ``multipart/form-data``. JSON is read as Django REST framework's parser reads it:
    decoded in the Content-Type's charset (UTF-8 when it names none, so a UTF-16 body is a
    parse error rather than sniffed as Python's ``json.loads`` would), ``NaN`` and
    ``Infinity`` refused. Both form encodings give each field its last value, except
    ``printers``, the one list field, which keeps every value (a list is sent as the key
    repeated).
    """
    if not body:
        return {}  # a body-less request (deleting a group): the rules say what is missing
    kind, _, parameters = (content_type or "").partition(";")
    kind = kind.strip().lower()
    if kind == _FORM:
        return _form_fields(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
    if kind == _MULTIPART:
        return _form_fields(_multipart_fields(content_type or "", body))
    if kind != "application/json":
        raise GroupRefusal(415, {"detail": f'Unsupported media type "{kind}" in request.'})
    try:
        data = json.loads(body.decode(_charset(parameters)), parse_constant=_strict_constant)
    # LookupError: a charset that is a codec but no text encoding (rot13).
    except (ValueError, LookupError) as exc:
        raise GroupRefusal(400, {"detail": f"JSON parse error - {exc}"}) from None
    if not isinstance(data, dict):
        raise GroupRefusal(
            400,
            {"non_field_errors": [
                f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
            ]},
        )
    return data


def _form_fields(form: Mapping[str, list[str]]) -> dict[str, Any]:
    return {k: v if k == "printers" else v[-1] for k, v in form.items()}


def _multipart_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The text fields of a ``multipart/form-data`` body, each name with its values in order.

    Read by the standard library's MIME parser from the request's own Content-Type, which
    names the boundary. Without a boundary Django's parser gives up, and so does this, with
    the words DRF answers; a file part is no field (Django puts files apart from the data).
    """
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(EmailMessage, policy=email.policy.HTTP).parsebytes(head + body)
    boundary = message.get_boundary()
    if not boundary:
        refusal = f"Multipart form parse error - Invalid boundary in multipart: {boundary}"
        raise GroupRefusal(400, {"detail": refusal})
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        charset = _charset(str(part.get("content-type", "")).partition(";")[2])
        try:
            text = raw.decode(charset, "replace")
        except LookupError:  # a codec that is no text encoding (rot13), as for JSON above
            text = raw.decode("utf-8", "replace")
        fields.setdefault(name, []).append(text)
    return fields


def find_group(groups: Sequence[Record], group_id: str) -> Record:
    for group in groups:
        if group["id"] == group_id:
            return group
    raise GroupRefusal(404, _NOT_FOUND)


def _name(body: Mapping[str, Any], *, required: bool) -> str | None:
    if "name" not in body or body["name"] is None:
        if required:
            raise _invalid("name", _REQUIRED)
        return None
    value = body["name"]
    if not isinstance(value, str):
        raise _invalid("name", "Not a valid string.")
    if not value.strip():
        raise _invalid("name", _BLANK)
    if len(value) > GROUP_NAME_MAX:
        raise _invalid("name", f"Ensure this field has no more than {GROUP_NAME_MAX} characters.")
    return value


def _flag(body: Mapping[str, Any], field: str) -> bool | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise _invalid(field, "Must be a valid boolean.")


def create_group(
    groups: MutableSequence[Record],
    body: Mapping[str, Any],
    *,
    now: str,
    creator: Record,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Record:
    """Add a group whose only member, an administrator, is ``creator``; the ``NewWorkgroup``."""
    name = _name(body, required=True)
    assert name is not None
    group = records.workgroup_record(
        id=new_id(),
        name=name,
        created_at=now,
        memberships=[{**creator, "is_admin": True}],
        printers=[],
        has_fleet_control=False,
        has_fleet_control_updated_by=None,
        update_mode="AUTOMATIC",
    )
    groups.append(group)
    return {k: group[k] for k in
            ("id", "name", "created_at", "has_fleet_control", "has_fleet_control_updated_by")}


def update_group(groups: Sequence[Record], group_id: str, body: Mapping[str, Any]) -> Record:
    """Rename a group or set its remote-print override; the whole ``Workgroup`` after."""
    group = find_group(groups, group_id)
    name = _name(body, required=False)
    override = _flag(body, "remote_print_enabled_override")
    if name is not None:
        group["name"] = name
    if override is not None:
        group["remote_print_enabled_override"] = override
    return group


def delete_group(groups: MutableSequence[Record], group_id: str) -> None:
    group = find_group(groups, group_id)
    if group["printers"]:
        raise GroupRefusal(
            400,
            {"detail": "This group still holds printers; move them to another group first."},
        )
    groups.remove(group)


def _member_email(body: Mapping[str, Any]) -> str:
    value = body.get("user")
    if value is None:
        raise _invalid("user", _REQUIRED)
    if not isinstance(value, str) or not value.strip():
        raise _invalid("user", _BLANK)
    email = value.strip()
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain):
        raise _invalid("user", "Enter a valid email address.")
    return email


def _membership(group: Record, email: str) -> Record | None:
    members: list[Record] = group["memberships"]
    for member in members:
        if email.lower() in (str(member["email"]).lower(), str(member["user"]).lower()):
            return member
    return None


def _keeps_an_admin(group: Record, leaving: Record) -> None:
    if leaving.get("is_admin") and not any(
        m.get("is_admin") for m in group["memberships"] if m is not leaving
    ):
        raise GroupRefusal(
            400, {"detail": "A group must keep at least one administrator."}
        )


def add_member(groups: Sequence[Record], group_id: str, body: Mapping[str, Any]) -> Record:
    """Invite a user (by email) into a group; the new ``WorkgroupMembership``."""
    group = find_group(groups, group_id)
    email = _member_email(body)
    is_admin = _flag(body, "is_admin")
    if _membership(group, email) is not None:
        raise _invalid("user", f"{email} is already a member of this group.")
    member = records.group_membership(
        is_admin=bool(is_admin), user=email, email=email, first_name="", last_name=""
    )
    group["memberships"].append(member)
    return member


def _named_member(
    groups: Sequence[Record], group_id: str, body: Mapping[str, Any]
) -> tuple[Record, Record]:
    """The group and the existing membership the body's ``user`` names (404 when absent)."""
    group = find_group(groups, group_id)
    member = _membership(group, _member_email(body))
    if member is None:
        raise GroupRefusal(404, _NOT_FOUND)
    return group, member


def update_member(groups: Sequence[Record], group_id: str, body: Mapping[str, Any]) -> Record:
    """Change a member's administrator right; the ``WorkgroupMembership`` after."""
    group, member = _named_member(groups, group_id, body)
    is_admin = _flag(body, "is_admin")
    if is_admin is False:
        _keeps_an_admin(group, member)
    if is_admin is not None:
        member["is_admin"] = is_admin
    return member


def remove_member(groups: Sequence[Record], group_id: str, body: Mapping[str, Any]) -> None:
    group, member = _named_member(groups, group_id, body)
    _keeps_an_admin(group, member)
    group["memberships"].remove(member)


def move_printers(
    groups: Sequence[Record], body: Mapping[str, Any], known: Callable[[str], bool]
) -> list[str]:
    """Move printers (serials ``known`` accepts) into ``target_group``; the serials moved."""
    target_id = body.get("target_group")
    if target_id is None:
        raise _invalid("target_group", _REQUIRED)
    try:
        target_id = str(uuid.UUID(str(target_id)))
    except ValueError:
        raise _invalid("target_group", "Must be a valid UUID.") from None
    serials = body.get("printers")
    if serials is None:
        raise _invalid("printers", _REQUIRED)
    if not isinstance(serials, list):
        raise _invalid(
            "printers", f'Expected a list of items but got type "{type(serials).__name__}".'
        )
    if not serials:
        raise _invalid("printers", "This list may not be empty.")
    unknown = [str(s) for s in serials if not isinstance(s, str) or not known(s)]
    if unknown:
        raise _invalid("printers", f"Unknown printer(s): {', '.join(unknown)}.")
    target = find_group(groups, target_id)
    for group in groups:
        if group is not target:
            group["printers"] = [s for s in group["printers"] if s not in serials]
    for serial in serials:
        if serial not in target["printers"]:
            target["printers"].append(serial)
    return [str(s) for s in serials]


class GroupTable:
    """The Dashboard's own group table in the fleet directory, once a client changed it.

    :meth:`read` gives None until the first change; :meth:`change` runs one rule on the table
    (seeded from ``seed()``, the groups as shown before any change) under a lock and writes it
    back atomically, so a re-read (by this process or a restarted one) sees the change.
    """

    def __init__(self, fleet_dir: Path) -> None:
        self.path = fleet_dir / GROUPS_FILE
        self._lock = threading.Lock()

    def read(self) -> list[Record] | None:
        with self._lock:
            return self._read()

    def _read(self) -> list[Record] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SimError(500, "GROUPS_UNREADABLE", f"{self.path} is unreadable: {exc}") from exc
        try:
            data = json.loads(text)
            groups = data["groups"]
            if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
                raise TypeError("'groups' is not a list of objects")
        except (ValueError, TypeError, KeyError) as exc:
            raise SimError(500, "GROUPS_UNREADABLE", f"{self.path} is unreadable: {exc}") from exc
        return groups

    def change(
        self, seed: Callable[[], list[Record]], rule: Callable[[list[Record]], Any]
    ) -> Any:
        """Apply ``rule`` to the table and keep the result; a refusal keeps the table as it was."""
        with self._lock:
            groups = self._read()
            if groups is None:
                groups = seed()
            answer = rule(groups)
            text = json.dumps({"format": _FORMAT, "version": 1, "groups": groups}, indent=2)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, (text + "\n").encode("utf-8"))
        return answer
