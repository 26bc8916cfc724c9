"""Fuzz the tool's inputs through its entry points, as a user meets them (session 44).

Mutates real inputs (the sample recipes in ``recipes/``, the sample models in
``sample_models/``, sidecars, 3MF packages) and writes hostile ones from scratch (alias bombs,
``!!python/object`` tags, zip bombs, XXE, OBJ indices out of range, binary STLs whose count
disagrees with their size), then feeds each to the command line in a subprocess:

* recipes to ``validate`` (one in five to ``plan``);
* model files to ``plan`` with a sample recipe, a subset to ``run`` on the built-in simulator;
* sidecars and case folders to ``plan``, and a subset of models and sidecars dropped into a
  hot folder for ``watch --once`` (every file dropped must settle in ``done/`` or ``failed/``);
* batches of 100 model inputs to the readers in one process (``reader``: many more inputs a
  minute; any exception but ModelFileError, or a read over 10 s, is a finding);
* hostile HTTP requests to a running dashboard (``serve``) and simulator
  (``preform-simulator``): malformed JSON, huge bodies, wrong types, odd paths, bad headers;
* (session 47) the servers' answers: ``run`` of a model on a remote PreFormServer (a real
  simulator behind ``tests/hostile_http.py``'s front) one of whose answers departs from the
  Local API contract (``localapi``), and ``verify`` and ``fleet sync`` against the Dashboard
  simulator behind the front, one of whose answers departs from the Web API contract
  (``cloudapi``): a place in the body, found by the contract's schema (read at run time from
  ``../shared/formlabs-api``), made null, missing, of another type, out of range, outside its
  enum, an id naming nothing, a long or escaping string, or given extra fields; a status the
  contract does not list (200 with an error body, 202 for a call that waits, 404 for a known
  id, 204, an empty or null 200); an operation that never ends; a scene whose models' ids
  change between reads. Beyond the rules below: no traceback in the log file; a failure names
  the server, answer or step; no secret (the remote's password, the client secret) anywhere
  the command wrote; no build recorded printed when no print reached the server, and no failed
  print recorded finished; a run that succeeded has its ``.form`` in the output folder;
* (session 45) settings files and settings variables to ``validate``, ``jobs``, ``verify``,
  ``fleet sync --dry-run`` and ``watch --once`` (``settings``); ``.fps`` files named by a
  recipe to ``validate`` and ``run`` (``fps``); damaged, foreign, locked and edited job
  stores and hostile ``jobs`` arguments (``store``); hostile PostgreSQL URLs, whose password
  must appear nowhere the command wrote (``storeurl``); simulated fleet folders of hostile
  job files, read as the daemon's prints feed (``fleetjson``); ``verify`` against a Web API
  whose prints feed answers hostile pages (``webapi``).

A **finding** is: a traceback on stdout or stderr; an exit status outside the documented set
(0, 1, 2); a process over its time bound (a hang) or its RSS bound; an error line that names
neither the input nor a place in it; an input file changed or gone after a command that only
reads it (``validate``, ``plan``, ``run``); for HTTP, a 5xx, no answer within the bound, a
server that died or wrote a traceback. Each finding's input is kept under ``OUT/findings``.

    python bench/fuzz_inputs.py [--seed 44] [--budget 600] [--out DIR] [--kinds recipe,model,...]

Writes ``OUT/summary.json`` (counts per kind and mutation, the findings) and
``OUT/outcomes.jsonl`` (each command's status, time, RSS and first error or rejection, for
reading the messages), and prints a table.
The inputs are seeded: a seed gives the same inputs in the same order (how many fit the
budget depends on the machine).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from preform_pipeline.hotfolder.testing import (  # noqa: E402
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from tests.hostile_corpus import zip_bomb, zip_members  # noqa: E402

__all__ = ["main"]

KINDS = ("recipe", "model", "sidecar", "case", "watch", "reader", "http",
         "settings", "fps", "store", "storeurl", "fleetjson", "webapi", "localapi", "cloudapi")
#: The exit statuses the commands document: done, failed (bad input included), usage.
DOCUMENTED_EXITS = frozenset({0, 1, 2})
#: Bounds past which a command is a finding (a hang, unbounded memory).
TIME_BOUND_S = {"validate": 20.0, "plan": 40.0, "run": 90.0, "watch": 90.0, "jobs": 30.0,
                "verify": 40.0, "fleet": 30.0}
RSS_BOUND_MB = 700
HTTP_BOUND_S = 15.0
#: An error line must say where: the input's name, a line, a path into it, or a place word.
PLACE = re.compile(r"line \d+|:\d+:\d+|\$\.|\$:|column \d+|position|offset|byte \d+|member "
                   r"|vertex \d+|triangle \d+|facet|face \d+|object \d+|element|entry")
TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Finding:
    """One thing the tool got wrong: which input, what went wrong, what it said."""

    kind: str
    mutation: str
    name: str
    problem: str
    detail: str
    kept: str = ""


@dataclass
class Tally:
    """Inputs fed per kind and mutation, and the findings."""

    fed: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)


# ---------------------------------------------------------------------------- mutations


def _flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(max(1, len(data)))]


def _nul(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + b"\x00" * rng.randint(1, 4) + data[at:]


def _bom(rng: random.Random, data: bytes) -> bytes:
    return rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]) + data


def _crlf(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\r"]))


def _latin1(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice([b"\xe9", b"\xff\xfe", b"\x80", b"\xc3"]) + data[at:]


def _long_line(rng: random.Random, data: bytes) -> bytes:
    at = data.find(b"\n", rng.randrange(max(1, len(data))))
    at = len(data) if at < 0 else at
    return data[:at] + b" " + b"x" * rng.choice([5_000, 200_000, 3_000_000]) + data[at:]


def _splice(rng: random.Random, data: bytes) -> bytes:
    a, b = sorted(rng.randrange(len(data) + 1) for _ in range(2))
    return data[:a] + data[a:b] * rng.randint(2, 50) + data[b:]


BYTE_MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": _flip, "truncate": _truncate, "nul": _nul, "bom": _bom, "crlf": _crlf,
    "non-utf8": _latin1, "long-line": _long_line, "splice": _splice,
}

HOSTILE_SCALARS = [
    ".nan", ".inf", "-.inf", "1e400", "-1", "0", "9" * 400, "0x" + "f" * 300, "''", "null",
    "[]", "{}", "~", "true", "'\\u0000'", '"\\0"', "!!binary aGVsbG8=", "2024-13-45",
    "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "*undefined",
    "'" + "é" * 3000 + "'", "'../../etc/passwd'", "'/dev/zero'", "'{case_id'", "'{nope}'",
    "!!set {a, b}", "!!omap [a: 1]", "&a [*a]", "<<: {x: 1}", "1_000", "0o17", "+.5",
]


def _scalar_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines()) if re.match(r"\s*-?\s*[\w-]+:\s*\S", line)
            and not line.lstrip().startswith("#")]


def _at_a_key(rng: random.Random, text: str,
              change: Callable[[list[str], int], list[str]]) -> str:
    """``text`` with ``change`` made at one ``key: value`` line drawn from it."""
    lines = text.splitlines()
    places = _scalar_lines(text)
    if not places:
        return text
    return "\n".join(change(lines, rng.choice(places))) + "\n"


def _replace_value(rng: random.Random, text: str) -> str:
    def replaced(lines: list[str], i: int) -> list[str]:
        key, _, _ = lines[i].partition(":")
        return [*lines[:i], f"{key}: {rng.choice(HOSTILE_SCALARS)}", *lines[i + 1:]]

    return _at_a_key(rng, text, replaced)


def _duplicate_key(rng: random.Random, text: str) -> str:
    return _at_a_key(rng, text, lambda lines, i: [*lines[: i + 1], lines[i], *lines[i + 1:]])


def _alias_bomb(rng: random.Random, text: str) -> str:
    levels = rng.randint(6, 10)
    bomb = ["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    bomb += [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    bomb.append(f"fields: *l{levels - 1}")
    return "\n".join(bomb) + "\n" + text


def _merge_keys(rng: random.Random, text: str) -> str:
    return ("_base: &base {name: merged, description: x}\n<<: [*base, *base]\n"
            if rng.random() < 0.5 else "<<: {steps: 3}\n") + text


def _python_tag(rng: random.Random, text: str) -> str:
    tag = rng.choice(["!!python/object/apply:os.system ['true']",
                      "!!python/object:builtins.dict {}", "!!python/tuple [1, 2]",
                      "!custom x", "!<tag:yaml.org,2002:python/none> ''"])
    return f"hostile: {tag}\n" + text


def _deep(rng: random.Random, text: str) -> str:
    depth = rng.choice([200, 5_000, 50_000])
    if rng.random() < 0.5:
        return text + "deep: " + "[" * depth + "]" * depth + "\n"
    return text + "deep:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(min(depth, 3_000)))


def _long_name(rng: random.Random, text: str) -> str:
    return text + "k" * rng.choice([1_000, 100_000, 2_000_000]) + ": 1\n"


def _tabs(rng: random.Random, text: str) -> str:
    return text.replace("  ", "\t", rng.randint(1, 5))


TEXT_MUTATIONS: dict[str, Callable[[random.Random, str], str]] = {
    "value": _replace_value, "duplicate-key": _duplicate_key, "alias-bomb": _alias_bomb,
    "merge-keys": _merge_keys, "python-tag": _python_tag, "deep": _deep,
    "long-name": _long_name, "tabs": _tabs,
}


def mutate_text_file(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """A recipe or sidecar mutated by a YAML rule or a byte rule (half and half)."""
    if rng.random() < 0.55:
        name = rng.choice(sorted(TEXT_MUTATIONS))
        text = TEXT_MUTATIONS[name](rng, data.decode("utf-8"))
        return name, text.encode("utf-8", "surrogatepass")
    name = rng.choice(sorted(BYTE_MUTATIONS))
    return name, BYTE_MUTATIONS[name](rng, data)


# ---------------------------------------------------------------------------- model files


def _binary_stl(triangles: list[tuple[float, ...]], count: int | None = None) -> bytes:
    body = b"".join(struct.pack("<12fH", 0, 0, 0, *t, 0) for t in triangles)
    return b"fuzz".ljust(80, b" ") + struct.pack("<I", len(triangles) if count is None
                                                  else count) + body


def _tetra_triangles(bad: float | None = None) -> list[tuple[float, ...]]:
    p = [(0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (0.0, 10.0, 0.0), (0.0, 0.0, 10.0)]
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    tris = [tuple(c for v in f for c in p[v]) for f in faces]
    if bad is not None:
        tris[1] = (bad, *tris[1][1:])
    return tris


def _stl_count_lies(rng: random.Random) -> bytes:
    return _binary_stl(_tetra_triangles(), rng.choice([0, 1, 3, 5, 2**31, 2**32 - 1, 10**6]))


def _stl_nonfinite(rng: random.Random) -> bytes:
    return _binary_stl(_tetra_triangles(rng.choice([float("nan"), float("inf"), -float("inf"),
                                                    3.4e38, 1e-45])))


def _ascii_stl(rng: random.Random, end: bool) -> bytes:
    out = ["solid fuzz"]
    for t in _tetra_triangles():
        out += ["facet normal 0 0 0", " outer loop"]
        out += [f"  vertex {t[i]} {t[i + 1]} {t[i + 2]}" for i in (0, 3, 6)]
        out += [" endloop", "endfacet"]
    if end:
        out.append("endsolid fuzz")
    text = "\n".join(out) + ("\n" if rng.random() < 0.5 else "")
    if end and rng.random() < 0.5:
        text = text.replace("vertex 10.0", rng.choice(["vertex nan", "vertex inf", "vertex 1e999",
                                                      "vertex 0x10", "vertex --1"]), 1)
    return text.encode()


def _obj(rng: random.Random) -> bytes:
    verts = "v 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\n"
    index = rng.choice(["-5", "5", "0", "-1", "99999999999999999999", "-99999999999999999999",
                        "1/2/3", "1//", "//1", "1/-9", "a", "1.5", "+2", "٣", "2\x00"])
    faces = f"f 1 3 2\nf 1 2 {index}\nf 1 4 3\nf 2 3 4\n"
    if rng.random() < 0.3:
        verts = verts.replace("10", rng.choice(["nan", "inf", "1e999", "-nan", "1e-400"]), 1)
    return (verts + faces).encode()


CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"


def _model_xml(vertices: str = "", triangles: str = "", prolog: str = "",
               extra: str = "") -> bytes:
    vertices = vertices or ('<vertex x="0" y="0" z="0"/><vertex x="10" y="0" z="0"/>'
                            '<vertex x="0" y="10" z="0"/><vertex x="0" y="0" z="10"/>')
    triangles = triangles or ('<triangle v1="0" v2="2" v3="1"/><triangle v1="0" v2="1" v3="3"/>'
                              '<triangle v1="0" v2="3" v3="2"/><triangle v1="1" v2="2" v3="3"/>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<model unit="millimeter" '
            f'xmlns="{CORE}"><resources><object id="1" type="model"><mesh><vertices>{vertices}'
            f'</vertices><triangles>{triangles}</triangles></mesh></object></resources>'
            f'<build><item objectid="1"{extra}/></build></model>').encode()


RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        b'openxmlformats.org/package/2006/relationships"><Relationship Target="/3D/3dmodel.'
        b'model" Id="rel0" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"'
        b'/></Relationships>')


def _threemf_hostile(rng: random.Random) -> tuple[str, bytes]:
    choice = rng.choice(["traversal", "xxe", "laughs", "bomb", "lying-bomb", "bad-index",
                         "nan", "huge-count", "transform", "rels-elsewhere", "no-rels",
                         "many-members", "encrypted-flag"])
    model = "3D/3dmodel.model"
    if choice == "traversal":
        name = rng.choice(["../../evil.model", "/etc/evil", "3D/../../x.model", "..\\..\\x",
                           "3D/3dmodel.model/../../../tmp/x"])
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml(), name: b"x"})
    if choice == "xxe":
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml(
            prolog='<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>').replace(
                b'x="10"', b'x="&x;"', 1)})
    if choice == "laughs":
        ents = '<!ENTITY a0 "lol">' + "".join(
            f'<!ENTITY a{i} "{"&a" + str(i - 1) + ";" * 1}' + f'{("&a" + str(i - 1) + ";") * 9}">'
            for i in range(1, 10))
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml(
            prolog=f"<!DOCTYPE m [{ents}]>", extra=' partnumber="&a9;"')})
    if choice == "bomb":
        return choice, zip_bomb()
    if choice == "lying-bomb":
        return choice, zip_bomb(lie=True)
    if choice == "bad-index":
        v = rng.choice(["-1", "4", "99999999999999999999", "1.5", "x", ""])
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml(
            triangles=f'<triangle v1="0" v2="1" v3="{v}"/><triangle v1="0" v2="2" v3="3"/>')})
    if choice == "nan":
        v = rng.choice(["NaN", "INF", "1e999", "-inf", "0x1p3"])
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml().replace(
            b'x="10"', f'x="{v}"'.encode(), 1)})
    if choice == "huge-count":
        verts = '<vertex x="0" y="0" z="0"/>' * rng.choice([10, 200_000])
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml(
            vertices=verts, triangles='<triangle v1="0" v2="1" v3="2"/>' * 50_000)})
    if choice == "transform":
        t = rng.choice(["1 0 0 0 1 0 0 0 1 0 0", "nan 0 0 0 1 0 0 0 1 0 0 0",
                        "1e308 0 0 0 1e308 0 0 0 1e308 0 0 0", "0 0 0 0 0 0 0 0 0 0 0 0"])
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml(
            extra=f' transform="{t}"')})
    if choice == "rels-elsewhere":
        return choice, zip_members({"_rels/.rels": RELS.replace(b"/3D/3dmodel.model",
                                                             b"/../../etc/passwd"),
                                 model: _model_xml()})
    if choice == "no-rels":
        return choice, zip_members({"3D/other.model": _model_xml()})
    if choice == "many-members":
        members = {f"Metadata/m{i}.txt": b"" for i in range(rng.choice([1_000, 30_000]))}
        return choice, zip_members({"_rels/.rels": RELS, model: _model_xml(), **members})
    data = bytearray(zip_members({"_rels/.rels": RELS, model: _model_xml()}))
    for at in [m.start() for m in re.finditer(rb"PK\x01\x02|PK\x03\x04", bytes(data))]:
        data[at + (8 if data[at + 2] == 1 else 6)] |= 1  # the "encrypted" flag
    return choice, bytes(data)


def model_input(rng: random.Random, samples: list[Path]) -> tuple[str, str, bytes]:
    """(mutation, file name, bytes): a sample model mutated, or a hostile one written fresh."""
    roll = rng.random()
    if roll < 0.4:
        sample = rng.choice(samples)
        name = rng.choice(sorted(BYTE_MUTATIONS))
        data = sample.read_bytes()
        if sample.suffix == ".3mf" and rng.random() < 0.5:
            return _mutate_3mf_member(rng, data, sample.name)
        return f"{sample.suffix[1:]}:{name}", sample.name, BYTE_MUTATIONS[name](rng, data)
    if roll < 0.5:
        return "stl:count-lies", "count.stl", _stl_count_lies(rng)
    if roll < 0.57:
        return "stl:non-finite", "nonfinite.stl", _stl_nonfinite(rng)
    if roll < 0.64:
        end = rng.random() < 0.5
        return f"stl:ascii{'' if end else '-no-endsolid'}", "ascii.stl", _ascii_stl(rng, end)
    if roll < 0.78:
        return "obj:index", "part.obj", _obj(rng)
    what, data = _threemf_hostile(rng)
    return f"3mf:{what}", "part.3mf", data


def _mutate_3mf_member(rng: random.Random, data: bytes, name: str) -> tuple[str, str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    target = rng.choice([n for n in members if n.endswith(".model")] or list(members))
    how = rng.choice(sorted(BYTE_MUTATIONS))
    members[target] = BYTE_MUTATIONS[how](rng, members[target])
    return f"3mf-member:{how}", name, zip_members(members)


# ---------------------------------------------------------------------------- sidecars

SIDECARS = [
    {"case_id": "C-1042", "priority": 5, "label_text": "C-1042 L", "due_date": "2024-06-01"},
    {"case_id": "C-7", "patient_ref": "P-1", "units": "mm", "operator": "ann"},
]


def sidecar_input(rng: random.Random) -> tuple[str, str, bytes]:
    """(mutation, suffix, bytes) of a hostile sidecar, YAML or JSON."""
    base = dict(rng.choice(SIDECARS))
    if rng.random() < 0.5:
        key = rng.choice([*sorted(base), "printer", "priority", "units", "nonsense"])
        value: Any = rng.choice([None, [], {}, 10**30, -1, 1e309, "x" * 100_000, "\x00",
                                 "\ud800", {"a": [1, {"b": 2}]}, True, "../../etc", "{x}",
                                 "mm\nprinter: evil"])
        base[key] = value
        text = json.dumps(base, allow_nan=True)
        if rng.random() < 0.5:
            return f"json:{key}", ".json", text.encode("utf-8", "surrogatepass")
        mutation, data = mutate_text_file(rng, text.encode("utf-8", "surrogatepass"))
        return f"json:{key}:{mutation}", ".json", data
    yaml_text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in base.items())
    mutation, data = mutate_text_file(rng, yaml_text.encode())
    return f"yaml:{mutation}", ".yaml", data


# ---------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: killed at the time bound
    seconds: float
    rss_mb: float
    out: str
    err: str


def run_command(argv: list[str], cwd: Path, env: dict[str, str], bound_s: float) -> Outcome:
    """Run one command line; its exit status, time and peak RSS (``wait4``'s own).

    Linux keeps a process's high-water RSS across exec, so a child forked from this one starts
    from this process's RSS (about 145 MB with numpy): a figure at that floor means "no more",
    and only the bound (RSS_BOUND_MB) tells anything."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        status: int | None = None
        usage = None
        while True:
            pid, raw, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(raw)
                break
            if time.monotonic() - start > bound_s:
                os.killpg(process.pid, signal.SIGKILL)
                _, raw, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        process.returncode = status if status is not None else -9
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return Outcome(status, seconds, usage.ru_maxrss / 1024 if usage else 0.0,
                       out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


class Fuzzer:
    """Feeds inputs to the commands, judges each outcome, keeps the findings' inputs."""

    def __init__(self, out: Path, seed: int, deadline: float) -> None:
        self.out = out
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.tally = Tally()
        self.home = out / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "HOME": str(self.home),
                    "XDG_DATA_HOME": str(self.home / ".local" / "share"),
                    "XDG_STATE_HOME": str(self.home / ".local" / "state"),
                    "PREFORM_PIPELINE_CRASH_DIR": str(out / "crashes"),
                    "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
        self.cli = [sys.executable, "-m", "preform_pipeline"]
        self.samples = sorted(p for p in (ROOT / "sample_models").rglob("*")
                              if p.suffix in (".stl", ".obj", ".3mf"))
        self.recipes = sorted((ROOT / "recipes").glob("*.yaml"))
        self.count = 0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def _case_dir(self) -> Path:
        self.count += 1
        folder = self.out / "work" / f"{self.count:05d}"
        folder.mkdir(parents=True)
        return folder

    def judge(self, kind: str, mutation: str, name: str, command: str, outcome: Outcome,
              folder: Path, before: dict[str, str] | None, names: tuple[str, ...],
              extra: list[str] | None = None) -> None:
        # A model's mutation in full (stl:flip, 3mf:xxe); the others' by their first part.
        self.tally.fed[f"{kind}/{mutation if kind == 'model' else mutation.split(':')[0]}"] += 1
        problems = list(extra or [])
        text = outcome.out + outcome.err
        if TRACEBACK in text:
            problems.append("traceback")
        if outcome.status is None:
            problems.append(f"hang: over {TIME_BOUND_S[command]:.0f} s")
        elif outcome.status not in DOCUMENTED_EXITS:
            problems.append(f"exit {outcome.status}")
        if outcome.rss_mb > RSS_BOUND_MB:
            problems.append(f"RSS {outcome.rss_mb:.0f} MB")
        lines = outcome.err.splitlines()
        for i, line in enumerate(lines):
            # A line ending in ":" heads the problems listed under it: their lines say where.
            said = " ".join(lines[i:i + 2]) if line.endswith(":") else line
            if line.startswith("error:") and not (PLACE.search(said) or any(
                    n and n in said for n in names)):
                problems.append(f"no place: {line[:300]}")
        if before is not None and _digest(folder / "in") != before:
            problems.append("input changed or removed")
        for problem in problems:
            kept = self.out / "findings" / f"{len(self.tally.findings):04d}"
            shutil.copytree(folder, kept, symlinks=True, ignore=shutil.ignore_patterns("out*"))
            (kept / "outcome.json").write_text(json.dumps(asdict(outcome), indent=1))
            self.tally.findings.append(Finding(kind, mutation, name, problem,
                                               (outcome.err or outcome.out)[-1500:], str(kept)))
            print(f"FINDING {kind} {mutation} {name}: {problem}", flush=True)
        out_lines = outcome.out.splitlines()
        rejected = [line.strip() for line in out_lines[out_lines.index("rejected:") + 1:]
                    if line.startswith("  ")] if "rejected:" in out_lines else []
        if command == "validate":  # its problems are its output, one per line
            rejected = [line for line in out_lines if ": " in line][:1]
        said = next((line for line in outcome.err.splitlines() if line.startswith("error:")),
                    rejected[0] if rejected else "")
        with (self.out / "outcomes.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps({"kind": kind, "mutation": mutation, "name": name,
                                  "command": command, "status": outcome.status,
                                  "seconds": round(outcome.seconds, 2),
                                  "rss_mb": round(outcome.rss_mb), "said": said[:400],
                                  "tail": (outcome.err + outcome.out)[-700:]
                                  if kind in ("localapi", "cloudapi") else "",
                                  "problems": problems}) + "\n")
        if not problems:
            shutil.rmtree(folder, ignore_errors=True)

    def fuzz_recipe(self) -> None:
        source = self.rng.choice(self.recipes)
        mutation, data = mutate_text_file(self.rng, source.read_bytes())
        folder = self._case_dir()
        (folder / "in" / "base").mkdir(parents=True)
        shutil.copy(ROOT / "recipes" / "base" / "dental-form4.yaml", folder / "in" / "base")
        recipe = folder / "in" / source.name
        recipe.write_bytes(data)
        before = _digest(folder / "in")
        command = "validate" if self.rng.random() < 0.8 else "plan"
        argv = [*self.cli, "validate", str(recipe)] if command == "validate" else [
            *self.cli, "plan", str(recipe), str(ROOT / "sample_models" / "parts" / "gear.obj")]
        outcome = run_command(argv, folder, self.env, TIME_BOUND_S[command])
        self.judge("recipe", mutation, source.name, command, outcome, folder, before,
                   (source.name,))

    def fuzz_model(self) -> None:
        mutation, name, data = model_input(self.rng, self.samples)
        folder = self._case_dir()
        (folder / "in").mkdir()
        model = folder / "in" / name
        model.write_bytes(data)
        recipe = ROOT / "recipes" / "engineering-grey-form4.yaml"
        command = "run" if self.rng.random() < 0.08 else "plan"
        if command == "run":
            argv = [*self.cli, "run", str(recipe), str(model), "--output", str(folder / "out"),
                    "--simulator-arg=--latency=instant"]
        else:
            argv = [*self.cli, "plan", str(recipe), str(model)]
        before = _digest(folder / "in")
        # A rehearsal store of its own, as for .fps files (fuzz_fps says why).
        env = {**self.env, "XDG_DATA_HOME": str(folder / "data")}
        outcome = run_command(argv, folder, env, TIME_BOUND_S[command])
        self.judge("model", mutation, name, command, outcome, folder, before, (name,))

    def _sidecar_case(self, folder: Path) -> tuple[str, str, Path]:
        mutation, suffix, data = sidecar_input(self.rng)
        case = folder / "in" / "C-1042"
        case.mkdir(parents=True)
        (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
        if self.rng.random() < 0.5:
            (case / f"upper{suffix}").write_bytes(data)
            return mutation, f"upper{suffix}", case
        (folder / "in" / f"C-1042{suffix}").write_bytes(data)
        return mutation, f"C-1042{suffix}", case

    def fuzz_sidecar(self) -> None:
        folder = self._case_dir()
        mutation, name, case = self._sidecar_case(folder)
        recipe = ROOT / "recipes" / "dental-models-form4.yaml"
        before = _digest(folder / "in")
        outcome = run_command([*self.cli, "plan", str(recipe), str(case)], folder, self.env,
                              TIME_BOUND_S["plan"])
        self.judge("sidecar", mutation, name, "plan", outcome, folder, before, (name, "C-1042"))

    def fuzz_case(self) -> None:
        """A case folder with hostile names and entries beside good files."""
        folder = self._case_dir()
        name = self.rng.choice(["C-1", "C " * 60, "C-\x1b[2J", "C-\n1", "-rf", "C-" + "é" * 80,
                                "C-" + "x" * 240, ".hidden", "C-1.stl", "{case_id}", "C-%s%n"])
        case = folder / "in" / name
        case.mkdir(parents=True)
        (case / "a.stl").write_bytes(tetra_stl_bytes(2))
        entry = self.rng.choice(["link-loop", "dangling", "fifo", "folder.stl", "deep",
                                 "long", "dev-zero", "bad", "hidden"])
        if entry == "link-loop":
            (case / "loop.stl").symlink_to("loop.stl")
        elif entry == "dangling":
            (case / "gone.stl").symlink_to(folder / "nowhere.stl")
        elif entry == "fifo":
            os.mkfifo(case / "pipe.stl")
        elif entry == "folder.stl":
            (case / "folder.stl").mkdir()
        elif entry == "deep":
            deep = case
            for i in range(40):
                deep = deep / f"d{i}"
            deep.mkdir(parents=True)
            (deep / "b.stl").write_bytes(tetra_stl_bytes(3))
        elif entry == "long":
            (case / ("n" * 250 + ".stl")).write_bytes(tetra_stl_bytes(4))
        elif entry == "dev-zero":
            (case / "zero.stl").symlink_to("/dev/zero")
        elif entry == "bad":
            (case / "b.obj").write_bytes(_obj(self.rng))
        else:
            (case / ".b.stl").write_bytes(b"\x00" * 10)
        recipe = ROOT / "recipes" / "engineering-grey-form4.yaml"
        before = _digest(folder / "in")
        outcome = run_command([*self.cli, "plan", str(recipe), str(case)], folder, self.env,
                              TIME_BOUND_S["plan"])
        self.judge("case", f"{entry}", name, "plan", outcome, folder, before,
                   (name[:20], entry))

    def fuzz_reader(self) -> None:
        """A batch of 100 model inputs read by the readers in one process (many more inputs a
        minute than a command each): any exception but ModelFileError, or a slow read, is a
        finding, kept and then tried through ``plan``."""
        folder = self._case_dir()
        (folder / "in").mkdir()
        made: dict[str, str] = {}
        for i in range(100):
            mutation, name, data = model_input(self.rng, self.samples)
            stem, _, suffix = name.rpartition(".")
            (folder / "in" / f"{i:03d}-{stem}.{suffix}").write_bytes(data)
            made[f"{i:03d}-{stem}.{suffix}"] = mutation
        outcome = run_command([sys.executable, "-c", READER_WORKER, str(folder / "in")],
                              folder, self.env, 300)
        results = {}
        for line in outcome.out.splitlines():
            name, verdict, seconds = json.loads(line)
            results[name] = (verdict, seconds)
            self.tally.fed[f"reader/{made[name]}"] += 1
        problems = [(name, f"{verdict} in {seconds:.1f} s") for name, (verdict, seconds)
                    in results.items() if not verdict.startswith(("ok", "refused")) or
                    seconds > 10]
        if outcome.status != 0:
            problems.append(("batch", f"worker exit {outcome.status}: {outcome.err[-500:]}"))
        if outcome.rss_mb > RSS_BOUND_MB:
            problems.append(("batch", f"RSS {outcome.rss_mb:.0f} MB"))
        for name, problem in problems:
            kept = self.out / "findings" / f"{len(self.tally.findings):04d}"
            kept.mkdir(parents=True)
            if (folder / "in" / name).exists():
                shutil.copy(folder / "in" / name, kept / name)
            self.tally.findings.append(Finding("reader", made.get(name, "batch"), name,
                                               problem, "", str(kept)))
            print(f"FINDING reader {made.get(name)} {name}: {problem}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)

    def fuzz_watch(self) -> None:
        """A hot folder's ``watch --once`` over a few hostile drops and a good file: every file
        dropped ends in done/ or failed/ (nothing lost)."""
        folder = self._case_dir()
        (folder / "in").mkdir()
        recipe = write_recipe(folder, printer=None)
        settings = write_hotfolder_settings(
            folder, recipe, fleet_dir=folder / "fleet",
            inbox={"incomplete_timeout_s": 0.2, "quiet_period_s": 0.2})
        inbox = folder / "inbox"
        inbox.mkdir()
        dropped = {"good.stl": tetra_stl_bytes(7)}
        mutations = []
        for i in range(3):
            mutation, name, data = model_input(self.rng, self.samples)
            stem, _, suffix = name.rpartition(".")
            dropped[f"{stem}-{i}.{suffix}"] = data
            mutations.append(mutation)
        sidecar_mutation, suffix, data = sidecar_input(self.rng)
        dropped["cased-1.stl"] = tetra_stl_bytes(8)
        dropped[f"cased-1{suffix}"] = data
        mutations.append(sidecar_mutation)
        for name, data in dropped.items():
            (inbox / name).write_bytes(data)
        outcome = run_command([*self.cli, "watch", str(settings), "--once"], folder, self.env,
                              TIME_BOUND_S["watch"])
        self.judge("watch", "+".join(mutations), "inbox", "watch", outcome, folder, None,
                   tuple(dropped))
        if not folder.exists():
            return
        settled = {p.name for sub in ("done", "failed") if (inbox / sub).is_dir()
                   for p in (inbox / sub).rglob("*") if p.is_file()}
        lost = sorted(set(dropped) - settled - {p.name for p in inbox.iterdir()})
        if lost:
            self.tally.findings.append(Finding("watch", "+".join(mutations), "inbox",
                                               f"lost: {lost}", outcome.err[-800:]))

    # ------------------------------------------------------------------------ second round

    def fuzz_settings(self) -> None:
        """A settings file mutated (or the environment's settings made hostile), read by
        ``validate``, ``jobs``, ``verify``, ``fleet sync --dry-run`` or ``watch --once``."""
        folder = self._case_dir()
        (folder / "in").mkdir()
        settings = folder / "in" / "settings.yaml"
        env = dict(self.env)
        if self.rng.random() < 0.25:
            name = self.rng.choice(sorted(HOSTILE_ENV))
            env[name] = self.rng.choice(HOSTILE_ENV[name])
            settings.write_text(settings_text(folder), encoding="utf-8")
            mutation, names = f"env:{name}", (name, settings.name)
        else:
            mutation, data = mutate_text_file(self.rng, settings_text(folder).encode())
            settings.write_bytes(data)
            names = (settings.name,)
        names += ("PREFORM_PIPELINE_CLIENT_ID",)  # verify's refusal without credentials
        command = self.rng.choice(["validate"] * 3 + ["jobs"] * 2 + ["verify", "fleet"] * 2 +
                                  ["watch"] * (1 if self.rng.random() < 0.3 else 0))
        argv = {"validate": ["validate", "--settings", str(settings)],
                "jobs": ["jobs", "--settings", str(settings), "list"],
                "verify": ["verify", "--settings", str(settings)],
                "fleet": ["fleet", "sync", "--dry-run", str(settings)],
                "watch": ["watch", str(settings), "--once"]}[command]
        before = _digest(folder / "in")
        outcome = run_command([*self.cli, *argv], folder, env, TIME_BOUND_S[command])
        self.judge("settings", f"{mutation}:{command}", settings.name, command, outcome,
                   folder, before, names)

    def fuzz_fps(self) -> None:
        """A recipe whose scene is a hostile ``.fps`` file: ``validate``, or ``run`` on the
        simulator, which reads the file when the scene is made (as PreFormServer does)."""
        mutation, data = fps_input(self.rng)
        folder = self._case_dir()
        (folder / "in").mkdir()
        (folder / "in" / "job.fps").write_bytes(data)
        text = (ROOT / "recipes" / "engineering-grey-form4.yaml").read_text("utf-8")
        recipe = folder / "in" / "fps-grey.yaml"
        recipe.write_text(re.sub(r"  material_code:.*\n  layer_thickness_mm:.*\n  print_setting:"
                                 r".*\n", "  fps_file: job.fps\n", text), encoding="utf-8")
        command = "validate" if self.rng.random() < 0.2 else "run"
        model = ROOT / "sample_models" / "parts" / "gear.obj"
        argv = [*self.cli, "validate", str(recipe)] if command == "validate" else [
            *self.cli, "run", str(recipe), str(model), "--output", str(folder / "out"),
            "--simulator-arg=--latency=instant"]
        before = _digest(folder / "in")
        # A store of its own: in the shared rehearsal store the same model was a duplicate
        # after the first run, skipped before its scene (and its .fps) was ever made.
        env = {**self.env, "XDG_DATA_HOME": str(folder / "data")}
        outcome = run_command(argv, folder, env, TIME_BOUND_S[command])
        self.judge("fps", mutation, "job.fps", command, outcome, folder, before,
                   ("job.fps", "fps", recipe.name))

    def fuzz_store(self) -> None:
        """A hostile job store file (or hostile arguments on a good one) for ``jobs`` and
        ``verify``: a store the command refuses must be left exactly as it was."""
        import sqlite3

        folder = self._case_dir()
        how, path = store_file(self.rng, folder)
        args = ["list"]
        if self.rng.random() < 0.4:
            args = self.rng.choice(JOBS_ARGUMENTS)
            how = f"{how}+args:{' '.join(args)[:24]}"
        command = "verify" if self.rng.random() < 0.2 else "jobs"
        argv = [*self.cli, "verify", "--store", str(path)] if command == "verify" else [
            *self.cli, "jobs", "--store", str(path), *args]
        locked = None
        if self.rng.random() < 0.1 and path.is_file() and not path.is_symlink():
            locked = sqlite3.connect(path, timeout=0.1, isolation_level=None)
            try:
                locked.execute("BEGIN EXCLUSIVE")
                how = f"locked+{how}"
            except sqlite3.DatabaseError:
                locked.close()
                locked = None
        regular = path.is_file() and not path.is_symlink()
        before = path.read_bytes() if regular else b""
        try:
            outcome = run_command(argv, folder, self.env, TIME_BOUND_S[command])
        finally:
            if locked is not None:
                locked.close()
        extra = []
        if not os.path.lexists(path):
            extra.append("store gone")
        elif regular and before and outcome.status != 0 and path.read_bytes() != before:
            # (An empty file is a new database to SQLite: any open makes it a store.)
            extra.append("a refused store was changed")
        elif regular and before and not before.startswith(b"SQLite format 3\x00") and (
                outcome.status == 0 or path.read_bytes() != before):
            # Session 45's C: a file shorter than SQLite's header was taken for an empty
            # database and made a store over its bytes, the command exiting as if all was well.
            extra.append("a file that is not SQLite was taken for a store")
        # verify's refusal without credentials names the variables that give them.
        self.judge("store", how, path.name, command, outcome, folder, None,
                   (path.name, *[a[:20] for a in args[1:2]], "PREFORM_PIPELINE_CLIENT_ID",
                    "in the job store"),
                   extra)

    def fuzz_storeurl(self) -> None:
        """A hostile PostgreSQL store URL (as ``--store``, ``store.url``, the environment or
        ``store migrate --to``): said truly, and its password nowhere the command wrote."""
        folder = self._case_dir()
        (folder / "in").mkdir()
        secret = STORE_SECRET_STEM + "".join(self.rng.choices("abcdefghjkmnpqrstuvwxyz2345",
                                                              k=10))
        url = store_url(self.rng, secret)
        env = {**self.env, "HOME": str(folder / "home"),
               "XDG_DATA_HOME": str(folder / "home" / "data"),
               "XDG_STATE_HOME": str(folder / "home" / "state"),
               "PREFORM_PIPELINE_CRASH_DIR": str(folder / "crashes")}
        how = self.rng.choice(["argument", "settings", "environment", "migrate"])
        if "\x00" in url and how != "settings":
            how = "settings"  # no argument or variable can hold a NUL
        settings = folder / "in" / "settings.yaml"
        settings.write_text(json.dumps({"store": {"url": url} if how == "settings" else {},
                                        "logging": {"file": str(folder / "log.jsonl"),
                                                    "level": "DEBUG"}}), encoding="utf-8")
        if how == "argument":
            argv = ["jobs", "--settings", str(settings), "--store", url, "list"]
        elif how == "environment":
            env["PREFORM_PIPELINE_STORE_URL"] = url
            argv = ["jobs", "--settings", str(settings), "list"]
        elif how == "migrate":
            from preform_pipeline.store import SqliteJobStore

            SqliteJobStore(folder / "in" / "jobs.sqlite3").close()
            argv = ["store", "migrate", "--store", str(folder / "in" / "jobs.sqlite3"),
                    "--to", url]
        else:
            argv = [self.rng.choice(["jobs", "verify"]), "--settings", str(settings)]
        outcome = run_command([*self.cli, *argv], folder, env, TIME_BOUND_S["jobs"])
        written = [p for p in folder.rglob("*") if p.is_file() and folder / "in" not in p.parents]
        leaks = [str(p.relative_to(folder)) for p in written
                 if secret.encode() in p.read_bytes()]
        if secret in outcome.out + outcome.err:
            leaks.append("the console")
        self.judge("storeurl", how, url[:60], "jobs", outcome, folder, None,
                   ("postgres", "URL", "store"),
                   [f"password shown: {', '.join(leaks)}"] if leaks else [])

    def fuzz_fleetjson(self) -> None:
        """Fifty simulated fleet folders of hostile job files read as the daemon's prints
        feed in one process: any exception but CloudError, or a read over 10 s, a finding."""
        folder = self._case_dir()
        made: dict[str, str] = {}
        for i in range(50):
            jobs = folder / "in" / f"{i:03d}" / "jobs"
            jobs.mkdir(parents=True)
            for j in range(self.rng.randint(1, 12)):
                (jobs / f"job-{j}.json").write_bytes(fleet_job(self.rng, j))
            made[f"{i:03d}"] = "fleet"
        outcome = run_command([sys.executable, "-c", FLEET_WORKER, str(folder / "in")],
                              folder, self.env, 300)
        for line in outcome.out.splitlines():
            name, verdict, seconds = json.loads(line)
            self.tally.fed["fleetjson/folder"] += 1
            if verdict.startswith(("ok", "refused")) and seconds <= 10:
                continue
            kept = self.out / "findings" / f"{len(self.tally.findings):04d}"
            shutil.copytree(folder / "in" / name, kept)
            self.tally.findings.append(Finding("fleetjson", "fleet", name,
                                               f"{verdict[:1500]} in {seconds:.1f} s", "",
                                               str(kept)))
            print(f"FINDING fleetjson {name}: {verdict[:200]}", flush=True)
        if outcome.status != 0:
            self.tally.findings.append(Finding("fleetjson", "batch", "worker",
                                               f"worker exit {outcome.status}",
                                               outcome.err[-800:]))
        shutil.rmtree(folder, ignore_errors=True)

    def fuzz_webapi(self) -> None:
        """``verify`` with a print pending against a Web API whose prints feed answers a
        hostile page: it says what was wrong, and neither hangs nor reads pages for ever."""
        front = self._web_front()
        pending = self._pending_store()
        mutation, body = feed_page(self.rng, front.url)
        FEED[:] = [body]
        folder = self._case_dir()
        (folder / "in").mkdir()
        store = folder / "in" / "jobs.sqlite3"
        shutil.copy(pending, store)
        settings = folder / "in" / "settings.yaml"
        settings.write_text(json.dumps({"cloud": {"base_url": front.url}}), encoding="utf-8")
        env = {**self.env, "PREFORM_PIPELINE_CLIENT_ID": "fuzz-client",
               "PREFORM_PIPELINE_CLIENT_SECRET": WEB_SECRET}
        seen = len(front.seen)
        outcome = run_command([*self.cli, "verify", "--store", str(store), "--settings",
                               str(settings)], folder, env, TIME_BOUND_S["verify"])
        pages = sum(1 for r in front.seen[seen:] if r.path.endswith("/prints/"))
        extra = [f"{pages} page requests in one poll"] if pages > 20 else []
        if WEB_SECRET in outcome.out + outcome.err:
            extra.append("client secret shown")
        self.judge("webapi", mutation, "prints feed", "verify", outcome, folder, None,
                   ("prints", "Web API", "feed"), extra)

    def _web_front(self) -> Any:
        """The hostile Web API (tests/hostile_http.py), started once: it answers the prints
        feed with ``FEED[0]``."""
        if not WEB_FRONT:
            from tests.hostile_http import reply, running_front

            context = running_front()
            front = context.__enter__()
            front.on("POST", "/developer/v1/o/token/", reply(200, WEB_TOKEN))
            front.on("GET", "/developer/v1/prints/",
                     lambda sock, request, f: reply(200, FEED[0])(sock, request, f))
            WEB_FRONT.extend([front, context])
        return WEB_FRONT[0]

    def _pending_store(self) -> Path:
        """A store holding one print sent a minute ago, made once and copied per input."""
        path = self.out / "pending.sqlite3"
        if not path.exists():
            PENDING_KEY[:] = sent_prints(path, ["a.stl"])
        return path

    # ------------------------------------------------------------------------ HTTP

    def fuzz_http(self, budget_s: float) -> None:
        folder = self.out / "http"
        folder.mkdir(exist_ok=True)
        servers = [self._start_simulator(folder), self._start_dashboard(folder)]
        try:
            stop = time.monotonic() + budget_s
            while time.monotonic() < stop:
                for name, process, port, _ in servers:
                    mutation, request = hostile_request(self.rng, name, port)
                    status, seconds = send_raw(port, request)
                    self.tally.fed[f"http/{name}:{mutation}"] += 1
                    problem = ""
                    if status is None and seconds >= HTTP_BOUND_S:
                        problem = "no answer in time"
                    elif status is not None and status >= 500 and status != 501:
                        # 501: a method no route knows (BREW), a true answer
                        problem = f"status {status}"
                    elif process.poll() is not None:
                        problem = f"server exited {process.returncode}"
                    if problem:
                        kept = self.out / "findings" / f"{len(self.tally.findings):04d}"
                        kept.mkdir(parents=True)
                        (kept / "request.bin").write_bytes(request)
                        self.tally.findings.append(Finding(
                            "http", mutation, name, problem, request[:300].decode("latin-1"),
                            str(kept)))
                        print(f"FINDING http {name} {mutation}: {problem}", flush=True)
                        if process.poll() is not None:
                            return
        finally:
            for name, process, _, log in servers:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                text = Path(log).read_text("utf-8", "replace")
                if TRACEBACK in text:
                    self.tally.findings.append(Finding("http", "server log", name, "traceback",
                                                       text[text.index(TRACEBACK):][:1500]))

    def _start_simulator(self, folder: Path) -> tuple[str, subprocess.Popen[bytes], int, str]:
        log = folder / "simulator.err"
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline.simulator", "--port", "0",
             "--fleet-dir", str(folder / "fleet"), "--work-dir", str(folder / "sim"),
             "--latency", "instant"], cwd=folder, env=self.env,
            stdout=subprocess.PIPE, stderr=log.open("wb"))
        assert process.stdout is not None
        port = 0
        for raw in process.stdout:
            line = raw.decode()
            found = re.search(r"listening on port (\d+)", line)
            if found:
                port = int(found[1])
            if "READY FOR INPUT" in line:
                break
        self._live_scene(port, folder)
        return "simulator", process, port, str(log)

    def _live_scene(self, port: int, folder: Path) -> None:
        """A scene holding one model, and its model's id, for requests to act on."""
        import httpx

        model = folder / "tetra.stl"
        model.write_bytes(tetra_stl_bytes(5, size_mm=10.0))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            scene = client.post("/scene/", json={
                "machine_type": "FORM-4-0", "material_code": "FLGPGR05",
                "print_setting": "DEFAULT", "layer_thickness_mm": 0.1}).json()["id"]
            added = client.post(f"/scene/{scene}/import-model/", json={"file": str(model)})
            LIVE_IDS.extend([scene, added.json().get("id", scene)])

    def _start_dashboard(self, folder: Path) -> tuple[str, subprocess.Popen[bytes], int, str]:
        from preform_pipeline.settings.web import hash_secret

        settings = folder / "web.yaml"
        settings.write_text(json.dumps({
            "store": {"path": str(folder / "jobs.sqlite3")},
            "web": {"users": [{"name": "olivia", "role": "operator",
                               "secret_hash": hash_secret("fuzz-secret-0123")}]},
        }))
        log = folder / "dashboard.err"
        process = subprocess.Popen([*self.cli, "serve", str(settings), "--port", "0"],
                                   cwd=folder, env=self.env, stdout=subprocess.PIPE,
                                   stderr=log.open("wb"))
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        found = re.search(r":(\d+)", line)
        if not found:
            raise SystemExit(f"the dashboard did not start: {line!r} "
                             f"{log.read_text('utf-8', 'replace')}")
        self._log_in(int(found[1]))
        return "dashboard", process, int(found[1]), str(log)

    def _log_in(self, port: int) -> None:
        """A session cookie and its CSRF token, so half the dashboard's requests pass login."""
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            client.post("/login", data={"name": "olivia", "secret": "fuzz-secret-0123",
                                        "next": "/"})
            page = client.get("/")
            token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
            SESSION.extend([
                "; ".join(f"{k}={v}" for k, v in client.cookies.items()).encode(),
                (token[1] if token else "").encode()])

    # ------------------------------------------------------- the servers' answers (session 47)

    def _served(self, name: str) -> Any:
        """The front of ``name`` (``local``: a simulator of PreFormServer; ``dash``: the
        Dashboard simulator with a fleet of six printers), started once."""
        if name in SERVED:
            return SERVED[name]
        from preform_pipeline.simulator.cloud.testing import start_dashboard
        from preform_pipeline.simulator.testing import start_simulator
        from tests.hostile_http import running_front

        folder = self.out / f"served-{name}"
        folder.mkdir(exist_ok=True)
        if name == "local":
            contract = Contract("local-api-openapi.yaml")
            server = start_simulator("--log-level", "WARNING", "--latency", "instant",
                                     "--work-dir", str(folder / "sim"))
        else:
            contract = Contract("web-api-openapi.yaml")
            self._declare_fleet(folder / "fleet")
            outcomes = folder / "outcomes.yaml"
            outcomes.write_text("jobs:\n  - {name: 'bad *', outcome: ERROR, at: 0.5}\n",
                                encoding="utf-8")
            server = start_dashboard("--outcomes", str(outcomes), "--time-scale", "0",
                                     fleet_dir=folder / "fleet", client_secret=DASH_SECRET)
        running = server.__enter__()
        front_context = running_front(running.url)
        front = front_context.__enter__()
        SERVED[name] = (front, contract, running, folder)
        SERVED.setdefault("contexts", []).extend([server, front_context])
        return SERVED[name]

    @staticmethod
    def _declare_fleet(fleet: Path) -> None:
        from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS, FleetState

        FleetState(fleet).declare(
            tuple(p for p in DEFAULT_PRINTERS if p.serial.startswith("Simulated")),
            (DEFAULT_GROUPS[0],))

    def _script(self, front: Any, contract: Contract, kinds: dict[str, int], count: int
                ) -> Script:
        kind = self.rng.choices(list(kinds), list(kinds.values()))[0]
        at = self.rng.randrange(max(count, 1)) if kind in ("body", "status") else 0
        script = Script(random.Random(self.rng.random()), contract, at, kind)
        with front._lock:
            front.rules.clear()
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            front.on(method, ".*", script.answer)
        return script

    def _answers_judged(self, kind: str, script: Script, command: str, outcome: Outcome,
                        folder: Path, before: dict[str, str] | None, log: Path,
                        secrets: tuple[str, ...], extra: list[str]) -> None:
        """The oracle common to both kinds, then session 44's (``judge``)."""
        logged = log.read_text("utf-8", "replace") if log.exists() else ""
        if TRACEBACK in logged or '"exception"' in logged:
            extra.append("traceback in the log file")
        written = outcome.out + outcome.err + logged + "".join(
            p.read_text("utf-8", "replace") for p in (folder / "out").rglob("*")
            if p.is_file() and p.suffix in (".json", ".csv", ".txt", ".jsonl", ".log"))
        for secret in secrets:
            if secret in written:
                extra.append(f"secret shown ({secret[:6]}...)")
        if "\x1b" in outcome.out + outcome.err:
            extra.append("a terminal escape from an answer reached the console")
        if outcome.status not in (0, None) and not ANSWER_NAMED.search(
                outcome.out + outcome.err):
            extra.append("failure names no server, answer or step")
        mutation, _, name = (script.mutated or f"{script.kind}:none").partition(" ")
        self.judge(kind, mutation, name or "-", command, outcome, folder, before,
                   ("server", "PreFormServer", "Dashboard", "Web API"), extra)

    def fuzz_localapi(self) -> None:
        """``run`` of one model on a remote PreFormServer (the simulator behind the front)
        one of whose answers departs from the Local API contract."""
        front, contract, _, _ = self._served("local")
        script = self._script(front, contract, {"body": 8, "status": 3, "operation": 1,
                                                "ids": 1}, REQUESTS["local"])
        folder = self._case_dir()
        inputs = folder / "in"
        inputs.mkdir()
        model = inputs / "cube_with_hole.stl"
        model.write_bytes((ROOT / "sample_models" / "parts" / "cube_with_hole.stl").read_bytes())
        settings = folder / "settings.json"
        url = front.url.replace("//", f"//fuzz:{REMOTE_SECRET}@", 1)
        settings.write_text(json.dumps({"servers": {"count": 0, "remote_wait_s": 0},
                                        "remotes": [{"url": url}]}), encoding="utf-8")
        before = _digest(inputs)
        log = folder / "run.jsonl"
        outcome = run_command(
            [*self.cli, "run", str(ROOT / "recipes" / "engineering-grey-form4.yaml"),
             str(model), "--settings", str(settings), "--output", str(folder / "out"),
             "--store", str(folder / "jobs.sqlite3"), "--max-attempts", "1",
             "--step-timeout", str(STEP_TIMEOUT_S), "--log-file", str(log)],
            folder, self.env, TIME_BOUND_S["run"])
        if not script.mutated:
            REQUESTS["local"] = max(REQUESTS["local"], script.seen)
        extra: list[str] = []
        printed = "POST /scene/{id}/print/" in script.forwarded
        states = _build_states(folder / "jobs.sqlite3")
        if not printed and PRINTED_STATES & set(states.values()):
            extra.append(f"a build says printed ({states}) and no print reached the server")
        if outcome.status == 0 and not list((folder / "out").glob("*/*.form")):
            extra.append("succeeded without its .form in the output folder")
        if outcome.status == 0 and script.mutated.startswith("status:") and not (
                script.tolerated or any(script.mutated.endswith(r) for r in TOLERATED)):
            extra.append("accepted: the run succeeded on an answer the contract does not list")
        self._answers_judged("localapi", script, "run", outcome, folder, before, log,
                             (REMOTE_SECRET,), extra)

    def fuzz_cloudapi(self) -> None:
        """``verify`` (two prints pending: one finished, one failed) or ``fleet sync`` against
        the Dashboard simulator one of whose answers departs from the Web API contract."""
        front, contract, dash, served = self._served("dash")
        command = self.rng.choice(["verify", "verify", "fleet"])
        script = self._script(front, contract, {"body": 8, "status": 3}, REQUESTS[command])
        folder = self._case_dir()
        (folder / "in").mkdir()
        log = folder / "cloud.jsonl"
        env = {**self.env, "PREFORM_PIPELINE_CLIENT_ID": dash.credentials.client_id,
               "PREFORM_PIPELINE_CLIENT_SECRET": DASH_SECRET}
        builds: dict[str, int] = {}
        if command == "verify":
            from preform_pipeline.store import SqliteJobStore
            from tests.integration.test_verify_command import sent_print

            with SqliteJobStore(folder / "jobs.sqlite3") as store:
                builds = {label: sent_print(store, served / "fleet", label).id
                          for label in ("good", "bad")}
            settings = folder / "settings.yaml"
            settings.write_text(f"cloud: {{base_url: '{front.url}'}}\n", encoding="utf-8")
            argv = ["verify", "--settings", str(settings), "--store",
                    str(folder / "jobs.sqlite3")]
        else:
            from tests.integration.test_fleet_sync_command import write_settings

            self._declare_fleet(served / "fleet")
            settings = write_settings(folder, type("D", (), {"url": front.url})())
            argv = ["fleet", "sync", str(settings),
                    *(["--dry-run"] if self.rng.random() < 0.6 else [])]
        env["PREFORM_PIPELINE_LOG_FILE"] = str(log)
        outcome = run_command([*self.cli, *argv], folder, env, TIME_BOUND_S[command])
        if not script.mutated:
            REQUESTS[command] = max(REQUESTS[command], script.seen)
        extra: list[str] = []
        states = _build_states(folder / "jobs.sqlite3") if builds else {}
        if states.get(builds.get("bad", -1)) == "finished":
            extra.append("the failed print is recorded finished")
        if states.get(builds.get("good", -1)) in ("print_error", "aborted"):
            extra.append(f"the finished print is recorded {states[builds['good']]}")
        self._answers_judged("cloudapi", script, command, outcome, folder, None, log,
                             (DASH_SECRET,), extra)

    def run(self, kinds: tuple[str, ...]) -> None:
        feeders: dict[str, Callable[[], None]] = {
            "recipe": self.fuzz_recipe, "model": self.fuzz_model, "sidecar": self.fuzz_sidecar,
            "case": self.fuzz_case, "watch": self.fuzz_watch, "reader": self.fuzz_reader,
            "settings": self.fuzz_settings, "fps": self.fuzz_fps, "store": self.fuzz_store,
            "storeurl": self.fuzz_storeurl, "fleetjson": self.fuzz_fleetjson,
            "webapi": self.fuzz_webapi, "localapi": self.fuzz_localapi,
            "cloudapi": self.fuzz_cloudapi}
        weights = {"recipe": 4, "model": 5, "sidecar": 3, "case": 2, "watch": 0.3,
                   "reader": 0.3, "settings": 4, "fps": 1, "store": 4, "storeurl": 3,
                   "fleetjson": 0.3, "webapi": 3, "localapi": 4, "cloudapi": 4}
        if "http" in kinds:
            self.fuzz_http(min(180.0, self.left() * 0.15))
        chosen = [k for k in kinds if k in feeders]
        while chosen and self.left() > 0:
            kind = self.rng.choices(chosen, [weights[k] for k in chosen])[0]
            feeders[kind]()


def _batch_worker(imports: str, read: str, refusal: str) -> str:
    """A worker script: ``read`` (statements on ``path``) for each entry of the folder
    ``argv[1]``, one JSON line each (name, verdict, seconds); a ``refusal`` exception is a
    verdict "refused: ...", any other one a CRASH with its traceback."""
    return (f"import json, sys, time, traceback\nfrom pathlib import Path\n{imports}\n"
            "for path in sorted(Path(sys.argv[1]).iterdir()):\n"
            "    start = time.monotonic()\n    try:\n"
            + "".join(f"        {line}\n" for line in read.splitlines()) +
            "        verdict = 'ok'\n"
            f"    except {refusal} as exc:\n"
            "        verdict = 'refused: ' + str(exc)[:200]\n"
            "    except Exception as exc:\n"
            "        verdict = 'CRASH ' + ''.join(traceback.format_exception(exc))[-1500:]\n"
            "    print(json.dumps([path.name, verdict, time.monotonic() - start]), flush=True)\n")


#: The readers' worker: reads every file of a folder (name, verdict, s).
READER_WORKER = _batch_worker(
    "from preform_pipeline.errors import ModelFileError\n"
    "from preform_pipeline.geometry import read_mesh",
    "read_mesh(path)", "ModelFileError")


# ---------------------------------------------------------------------------- HTTP requests

SIM_PATHS = ["/", "/scene/", "/scenes/", "/scene/{x}/", "/scene/{x}/import-model/",
             "/scene/{x}/auto-orient/", "/scene/{x}/auto-layout/", "/scene/{x}/label/",
             "/scene/{x}/save-form/", "/scene/{x}/models/{x}/", "/load-form/", "/devices/",
             "/devices/{x}/", "/operations/{x}/", "/list-materials/", "/scene/{x}/print/",
             "/scene/{x}/estimate-print-time/", "/scene/{x}/save-screenshot/", "/login/"]
WEB_PATHS = ["/", "/builds/{x}", "/builds/{x}/screenshot", "/printers", "/history", "/failed",
             "/metrics", "/healthz", "/login", "/logout", "/builds/{x}/approve",
             "/cases/retry", "/static/{x}", "/favicon.ico"]
ODD = ["1", "-1", "0", "99999999999999999999999", "%00", "..%2f..%2fetc%2fpasswd", "%ff%fe",
       "a" * 5000, "%", "default", "null", "\u00e9", "1;rm", "1%0d%0aX-Injected:%201", "{x}"]
BODIES: list[bytes] = [
    b"", b"{", b"[]", b"null", b"1e999999", b'{"file_path": 1}', b'{"file_path": null}',
    b'{"machine_type": ["x"], "material_code": {}}', b"\xff\xfe{", b'{"a": NaN}',
    b"[" * 100_000 + b"]" * 100_000, b'{"x": "' + b"a" * 20_000_000 + b'"}',
    b'{"file_path": "/dev/zero"}', b'{"file_path": "../../../../etc/passwd"}',
    b'{"models": [{"model_id": "x"}]}', b'{"a": 1, "a": 2}', b'"\\ud800"',
    b"username=olivia&password=" + b"x" * 100_000, b"csrf=&next=//evil",
]


def _spec_fields() -> list[str]:
    """Every property name the Local API contract's request bodies use (read, not copied)."""
    spec = ROOT.parent / "shared" / "formlabs-api" / "local-api-openapi.yaml"
    if not spec.is_file():
        return ["file", "models", "mode", "tilt", "model_spacing_mm", "machine_type"]
    return sorted(set(re.findall(r"^\s+([a-z_]+):\n\s+(?:type|\$ref|description|oneOf|anyOf)",
                                 spec.read_text("utf-8"), re.MULTILINE)))


SPEC_FIELDS = _spec_fields()
HOSTILE_VALUES: list[Any] = [None, -1, 0, 1e308, -1e308, 10**40, "", "x" * 5000, [], {}, True,
                             "ALL", ["ALL"], [None], [{"id": 1}], "../../etc/passwd", "\x00",
                             "/dev/zero", "/", {"x": 1, "y": "1", "z": None}, [1e308] * 3]
#: Scene ids made real at the start, so operations reach the engine beyond the id check.
LIVE_IDS: list[str] = []
#: The dashboard's session cookie header value and CSRF token, once logged in.
SESSION: list[bytes] = []


def _json_body(rng: random.Random) -> bytes:
    fields = {rng.choice(SPEC_FIELDS): rng.choice(HOSTILE_VALUES)
              for _ in range(rng.randint(1, 4))}
    return json.dumps(fields).encode()


def hostile_request(rng: random.Random, server: str, port: int) -> tuple[str, bytes]:
    """(mutation, raw request bytes) for one hostile HTTP request."""
    path = rng.choice(SIM_PATHS if server == "simulator" else WEB_PATHS)
    path = path.replace("{x}", rng.choice(ODD + LIVE_IDS * 6)).encode("utf-8", "surrogatepass")
    method = rng.choice([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD",
                         b"BREW", b"G\x00T"] + [b"POST"] * 6)
    body = rng.choice(BODIES) if rng.random() < 0.4 else _json_body(rng)
    headers = [b"Host: 127.0.0.1:%d" % port, b"Content-Type: application/json"]
    if server == "dashboard" and SESSION and rng.random() < 0.6:
        headers = [b"Host: 127.0.0.1:%d" % port, b"Cookie: " + SESSION[0],
                   b"Content-Type: application/x-www-form-urlencoded"]
        fields = {"csrf": SESSION[1].decode(), "next": rng.choice(["/", "//evil", "/\t/x"]),
                  rng.choice(["target", "reason", "q", "page", "recipe", "name"]):
                  str(rng.choice(HOSTILE_VALUES))}
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8", "surrogatepass")
        if rng.random() < 0.5:
            path += b"?" + rng.choice([b"q=", b"page=", b"recipe=", b"state=", b"sort="]) + \
                rng.choice([b"-1", b"%00", b"9" * 30, b"%ff", b"a" * 2000, b"\xc3", b"1&page=2"])
    mutation = rng.choice(["body", "range", "length-lies", "header-junk", "request-line",
                           "chunked", "huge-header", "auth"])
    if mutation == "range":
        headers.append(b"Range: " + rng.choice([b"bytes=-0", b"bytes=5-1", b"bytes=0-" + b"9" * 40,
                                                 b"bytes=" + b"0-1," * 5000, b"lines=1-2",
                                                 b"bytes=-99999999999999999999"]))
    elif mutation == "length-lies":
        headers.append(b"Content-Length: " + rng.choice([
            b"-1", b"99999999999999999999", b"10, 20", b"x", str(len(body) + 5).encode()]))
        return mutation, b"%s %s HTTP/1.1\r\n%s\r\n\r\n%s" % (method, path, b"\r\n".join(headers),
                                                             body)
    elif mutation == "header-junk":
        headers.append(rng.choice([b"X-\x00: 1", b"Cookie: session=" + b"\xff" * 50,
                                   b"Host: evil.example", b": empty", b"Transfer-Encoding: gzip",
                                   b"Content-Type: multipart/form-data; boundary=",
                                   b"Accept-Encoding: " + b"gzip," * 5000]))
    elif mutation == "request-line":
        return mutation, rng.choice([b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\r\n\r\n",
                                     b"GET " + b"/" * 70_000 + b" HTTP/1.1\r\n\r\n",
                                     b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 2000 + b"\r\n",
                                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"])
    elif mutation == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        return mutation, b"%s %s HTTP/1.1\r\n%s\r\n\r\n%s" % (
            method, path, b"\r\n".join(headers),
            rng.choice([b"zz\r\nabc\r\n0\r\n\r\n", b"ffffffffffffffff\r\nab\r\n", b"3\r\nabc"]))
    elif mutation == "huge-header":
        headers.append(b"X-Big: " + b"a" * rng.choice([10_000, 100_000, 1_000_000]))
    elif mutation == "auth":
        headers.append(b"Authorization: " + rng.choice([b"Bearer ", b"Bearer " + b"a" * 100_000,
                                                         b"Basic %%%", b"Bearer \xff\xfe"]))
    headers.append(b"Content-Length: %d" % len(body))
    return mutation, b"%s %s HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n%s" % (
        method, path, b"\r\n".join(headers), body)


def send_raw(port: int, request: bytes) -> tuple[int | None, float]:
    """Send one raw request; the status the server answered (None: none) and the time."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=HTTP_BOUND_S) as sock:
            try:
                sock.sendall(request)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may answer and close before it read everything
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:  # a timeout, a reset
        return None, time.monotonic() - start
    found = re.match(rb"HTTP/\d\.\d (\d{3})", head)
    return (int(found[1]) if found else None), time.monotonic() - start


# ---------------------------------------------------------------------------- second round
# Session 45: settings files, .fps files, job stores and the jobs/verify arguments, store
# URLs, simulated fleet folders and the Web API's prints feed as verify reads it.

#: A password only the store URLs carry: found anywhere the commands wrote, it leaked.
STORE_SECRET_STEM = "Fz45-pw-"


def settings_text(folder: Path) -> str:
    """A settings file using every section a lab's would (all valid), as YAML."""
    recipe = ROOT / "recipes" / "dental-models-form4.yaml"
    return (f"servers:\n  count: 1\n  base_port: 0\n  startup_timeout_s: 30\n"
            f"  extra_args: [\"--latency\", \"instant\"]\n  path_map: {{/mnt/nas: /srv/nas}}\n"
            f"store:\n  path: {folder / 'jobs.sqlite3'}\n  node_id: node-a\n  lease_s: 60\n"
            f"logging:\n  level: INFO\n  file: {folder / 'log.jsonl'}\n"
            "cloud:\n  base_url: http://127.0.0.1:9\n  hourly_budget_share: 0.8\n"
            "verify:\n  interval_s: 120\n  deadline_s: 86400\n  notifications:\n"
            "    webhook_url: https://hooks.example/x\n"
            "fleet:\n  prune: false\n  groups:\n    - name: Lab A\n      printers: [Form4-A]\n"
            "      members: [ann@lab.example, {email: bo@lab.example, admin: true}]\n"
            f"hotfolders:\n  inboxes:\n    - path: {folder / 'inbox'}\n      recipe: {recipe}\n"
            "      quiet_period_s: 0.5\n  batching:\n    window_s: 0.5\n"
            "web:\n  port: 0\n  refresh_s: 5\n")


#: Settings named by the environment, with values a hostile or careless one would hold.
HOSTILE_ENV = {
    "PREFORM_PIPELINE_SERVER_PATH_MAP": ["{", "[]", '{"a": 1}', '{"": ""}', "null", "\x01"],
    "PREFORM_PIPELINE_REMOTES": ["[{", '[{"url": 5}]', '{"url": "x"}', "[" * 5000],
    "PREFORM_PIPELINE_SERVER_COUNT": ["-1", "1e400", "nan", "9" * 400, "0x10", ""],
    "PREFORM_PIPELINE_NODE_LEASE_S": ["inf", "-inf", "0", "1e308"],
    "PREFORM_PIPELINE_LOG_LEVEL": ["LOUD", "", "debug\nINFO"],
    "PREFORM_PIPELINE_LOG_FILE": ["/dev/full", "/", "x" * 5000, "/nonexistent/dir/log"],
    "PREFORM_PIPELINE_STORE_PATH": ["/dev/zero", "/", "", "x" * 5000, "/proc/self/status"],
    "PREFORM_PIPELINE_SETTINGS": ["/dev/zero", "/", "/etc/passwd", "x" * 5000],
}


def fps_input(rng: random.Random) -> tuple[str, bytes]:
    """(mutation, bytes) of a hostile PreForm print-settings file, from a real schema-3 one."""
    from preform_pipeline.simulator.fps import schema3_document

    doc: Any = schema3_document("FORM-4-0", "FLGPGR05", 0.1)
    roll = rng.random()
    if roll < 0.35:
        name = rng.choice(sorted(BYTE_MUTATIONS))
        return f"bytes:{name}", BYTE_MUTATIONS[name](rng, json.dumps(doc, indent=1).encode())
    places: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in items:
            places.append((node, key))
            walk(value)

    walk(doc)
    node, key = rng.choice(places)
    if roll < 0.8:
        node[key] = rng.choice([*HOSTILE_VALUES, float("nan"), float("inf"), -0.0, 1e-300,
                                "ADAPTIVE", 3, {"layer_thickness_mm": None}])
        what = f"value:{key}"
    else:
        del node[key]
        what = f"missing:{key}"
    return what, json.dumps(doc, allow_nan=True).encode()


def sent_prints(path: Path, names: list[str]) -> list[str]:
    """A new store at ``path`` with a job per name, each in a build whose print was sent
    (pending for verify); the builds' keys, which the prints feed names runs by."""
    from preform_pipeline.store import JobState, SqliteJobStore

    keys = []
    with SqliteJobStore(path) as store:
        for name in names:
            job = store.create_job(recipe="dental", source_path=f"/hot/processing/{name}",
                                   state=JobState.PROCESSING)
            build = store.create_build(recipe="dental", job_ids=[job.id])
            for state in (JobState.PREPARING, JobState.PREPARED, JobState.PRINT_SENDING,
                          JobState.PRINT_SENT):
                store.transition_build(build.id, state, "fuzz", printer="Form4-A")
            keys.append(build.job_key)
    return keys


def store_file(rng: random.Random, folder: Path) -> tuple[str, Path]:
    """(mutation, path) of a job store file made hostile: damaged, foreign, of another schema
    version, cut short, a folder, a device; a real store with two jobs first."""
    import sqlite3

    path = folder / "in" / "jobs.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    how = rng.choice(["text", "random", "truncate", "flip", "newer", "negative", "foreign",
                      "empty", "folder", "dev-zero", "fifo", "wal-junk", "huge-version",
                      "dropped-table", "bad-rows"])
    if how in ("text", "random", "empty", "folder", "dev-zero", "fifo"):
        if how == "text":
            path.write_bytes(rng.choice([b"not a store\n", b"SQLite format 3\x00" + b"\xff" * 99,
                                         b"PK\x03\x04" + b"\x00" * 200]))
        elif how == "random":
            path.write_bytes(rng.randbytes(rng.choice([1, 100, 4096, 70_000])))
        elif how == "empty":
            path.write_bytes(b"")
        elif how == "folder":
            path.mkdir()
        elif how == "dev-zero":
            path.symlink_to("/dev/zero")
        else:
            os.mkfifo(path)
        return how, path
    sent_prints(path, ["a.stl", "b.stl"])
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(_truncate(rng, data))
    elif how == "flip":
        path.write_bytes(_flip(rng, data))
    elif how == "wal-junk":
        Path(f"{path}-wal").write_bytes(rng.randbytes(rng.choice([32, 5000])))
    else:
        with closing(sqlite3.connect(path)) as conn, conn:
            # Closed before the command runs: an open connection checkpoints its WAL into
            # the file when collected, which read as the command changing the store.
            if how in ("newer", "negative", "huge-version"):
                version = {"newer": 99, "negative": -rng.randint(1, 9),
                           "huge-version": 2**31 - 1}[how]
                conn.execute(f"PRAGMA user_version = {version}")
            elif how == "foreign":
                conn.execute("PRAGMA user_version = 0")
            elif how == "dropped-table":
                conn.execute(f"DROP TABLE {rng.choice(['transitions', 'builds', 'jobs'])}")
            else:
                conn.execute(rng.choice([
                    "UPDATE jobs SET state = 'nonsense'", "UPDATE jobs SET created_at = 'x'",
                    "UPDATE builds SET state = 'zz'", "UPDATE jobs SET fields = '{'",
                    "UPDATE jobs SET recipe = x'ff00'", "UPDATE builds SET updated_at = 1e400",
                    "UPDATE transitions SET to_state = 'zz'", "UPDATE jobs SET priority = 'x'",
                    "UPDATE builds SET approval = '[1'"]))
    return how, path


#: Arguments of ``jobs`` a hostile script or a typo gives.
JOBS_ARGUMENTS = [
    ["list", "--since", "-1d"], ["list", "--since", "99999999d"], ["list", "--since", "2024-13-45"],
    ["list", "--since", "nan"], ["list", "--limit", "-1"], ["list", "--limit", "9" * 40],
    ["list", "--state", "nonsense,"], ["list", "--state", ""], ["list", "--recipe", "%_é"],
    ["show", "0"], ["show", "-1"], ["show", "9" * 40], ["show", "PP-" + "Z" * 300],
    ["show", "1e3"], ["retry", "1"], ["cancel", "2"], ["resolve", "1"],
    ["resolve", "1", "--printed", "--not-printed"], ["approve", "x"], ["reject", "1"],
    ["waiting"], ["list", "--format", "json"], ["show", "1", "--format", "json"],
]


def store_url(rng: random.Random, secret: str) -> str:
    """A hostile postgresql:// URL carrying ``secret`` as its password, in the URL's login,
    its query or both; every server it can name is refused at once (port 1 on loopback, a
    missing socket folder), so no command waits on the network."""
    scheme = rng.choice(["postgresql://", "postgres://", "POSTGRESQL://", "postgresql:",
                         "postgresql+psycopg://", "pgsql://", "postgresql:///"])
    login = rng.choice([f"u:{secret}@", f"u:{secret}%40x@", f"%75:{secret}@", f":{secret}@",
                        f"u:{secret}%00@", f"u:{secret}%@", f"u:{secret}@@", f"u:{secret}/x@",
                        f"u:{secret}?x@", "u@", ""])
    host = rng.choice(["127.0.0.1:1", "[::1]:1", "[::1:1", "127.0.0.1:0", "127.0.0.1:99999",
                       "127.0.0.1:-1", "127.0.0.1:x", "127.0.0.1:1,127.0.0.1:2", "%2Fnowhere",
                       "127.0.0.1:" + "1" * 30, "", "\x00", "h" * 300 + ".invalid:1"])
    path = rng.choice(["/db", "/", "", "/" + "d" * 5000, "/db%00", "/db%ZZ", "/../x", "/é"])
    query = rng.choice(["", f"?password={secret}", "?sslmode=bogus", "?connect_timeout=-1",
                        "?connect_timeout=99999999999", "?options=-c%20search_path%3Devil",
                        "?options=--password%3Dx", "?x=1&x=2", "?host=/nowhere",
                        "?application_name=%00", "?passfile=/etc/shadow", "?sslmode=disable&",
                        f"?password={secret}%ZZ", "?" + "a=b&" * 2000, "#frag"])
    return scheme + login + host + path + query


def fleet_job(rng: random.Random, i: int) -> bytes:
    """A simulated fleet's job file (simulator-engine.md) with hostile fields."""
    job: dict[str, Any] = {"job_id": f"job-{i}", "job_name": f"PP-{i:010d} case",
                           "printer": "Form4-A", "created_at": "2026-01-01T08:00:00+00:00",
                           "started_at": "2026-01-01T08:01:00+00:00",
                           "ends_at": "2026-01-01T09:00:00+00:00", "outcome": "FINISHED",
                           "scene_settings": {"machine_type": "FORM-4-0",
                                              "material_code": "FLGPGR05"}}
    roll = rng.random()
    if roll < 0.15:
        return BYTE_MUTATIONS[rng.choice(sorted(BYTE_MUTATIONS))](rng, json.dumps(job).encode())
    if roll < 0.25:
        return json.dumps(rng.choice([[job], "job", 5, None])).encode()
    for _ in range(rng.randint(1, 3)):
        job[rng.choice(sorted(job))] = rng.choice(
            [*HOSTILE_VALUES, "NaN", "9999-12-31T23:59:59", "0000-00-00", "2026-01-01T08:00:00",
             "-999999999-01-01", "2026-01-01T08:00:00+99:00", float("nan"), 1e308,
             {"machine_type": ["x"]}])
    return json.dumps(job, allow_nan=True).encode()


#: The fleet folder's worker: the prints feed read from each folder of job files, as the
#: daemon's verification reads it, every page, with and without a date filter.
FLEET_WORKER = _batch_worker(
    "from datetime import datetime, timezone\n"
    "from preform_pipeline.cloud import PrintFilter\n"
    "from preform_pipeline.errors import CloudError\n"
    "from preform_pipeline.printing.fleetfolder import FleetFolderFeed\n"
    "since = PrintFilter(date__gt=datetime(2025, 1, 1, tzinfo=timezone.utc))",
    "feed = FleetFolderFeed(path)\n"
    "for where in (None, since):\n"
    "    page, n = 1, 0\n"
    "    while page is not None and n < 50:\n"
    "        got = feed.list_prints_page(page, 7, where=where)\n"
    "        [(r.guid, r.status, r.printer, r.print_finished_at) for r in got.items]\n"
    "        page, n = got.next_page, n + 1",
    "CloudError")


def feed_page(rng: random.Random, url: str) -> tuple[str, str]:
    """(mutation, body) of a hostile page of the Web API's prints feed, whose run is the
    pending print's (named by its key, made now), so that its fields are read."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    good = {"guid": "g-1", "name": f"{PENDING_KEY[0]} case", "printer": "Form4-A",
            "status": "FINISHED", "created_at": now, "print_started_at": now,
            "print_finished_at": now}
    page: dict[str, Any] = {"count": 1, "next": None, "previous": None, "results": [good]}
    how = rng.choice(["field", "missing", "page-field", "next", "huge", "literal", "shape"])
    if how == "field":
        key = rng.choice([*sorted(good), "message", "volume_ml", "layer_count", "material"])
        good[key] = rng.choice([*HOSTILE_VALUES, "NaN", "2026-99-99T99:99:99Z", "Infinity",
                                "1970-01-01T00:00:00Z", 1e308, -1])
        how = f"field:{key}"
    elif how == "missing":
        key = rng.choice(sorted(good))
        del good[key]
        how = f"missing:{key}"
    elif how == "page-field":
        key = rng.choice(["count", "results", "previous"])
        page[key] = rng.choice([*HOSTILE_VALUES, {"results": []}, "x"])
        how = f"page:{key}"
    elif how == "next":
        page["next"] = rng.choice([f"{url}/developer/v1/prints/?page=1",
                                   f"{url}/developer/v1/prints/?page=0",
                                   "http://evil.example/developer/v1/prints/?page=2",
                                   f"{url}/developer/v1/prints/?page=-7",
                                   f"{url}/developer/v1/prints/?page=x", "//", "", "page=2",
                                   f"{url}/developer/v1/prints/?page=" + "9" * 40])
        page["count"] = rng.choice([1, 10**9])
        if rng.random() < 0.5:
            page["results"] = []
    elif how == "huge":
        page["results"] = [good] * rng.choice([10_000, 200_000])
        page["count"] = len(page["results"])
    elif how == "literal":
        return how, rng.choice(['{"count": NaN, "next": null, "results": []}',
                                '{"count": 1, "results": [{"guid": Infinity}]}', "{" * 50_000,
                                '{"results": [' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "]}",
                                '{"count": 1, "count": 2, "results": []}', "\ufeff{}", ""])
    else:
        return how, json.dumps(rng.choice([[], None, "page", 1, [page]]))
    return how, json.dumps(page, allow_nan=True)

#: The hostile Web API's state: its front (and the context that stops it), the page it answers.
WEB_FRONT: list[Any] = []
FEED: list[str] = ["{}"]
WEB_SECRET = "fuzz-web-secret-45"
#: The job key of the print pending in the webapi kind's store.
PENDING_KEY: list[str] = []
WEB_TOKEN = json.dumps({"access_token": "fuzz-token", "token_type": "Bearer",
                        "expires_in": 3600})


# ------------------------------------------------------------ the servers' answers (session 47)

#: The official contracts, read at run time from ``../shared`` beside the repository.
CONTRACTS = ROOT.parent / "shared" / "formlabs-api"
#: The remote's basic-auth password, written in its url: it must appear nowhere.
REMOTE_SECRET = "Fz47-remote-pw"
#: A client secret for the Dashboard simulator: it must appear nowhere.
DASH_SECRET = "fuzz-dash-secret-47"
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\x1b[31mred\r\nnext line\x00\x08\x7f"


class Contract:
    """One OpenAPI contract: the schema of each answer, found by method, path and status."""

    def __init__(self, name: str) -> None:
        import yaml

        self.spec = yaml.safe_load((CONTRACTS / name).read_text(encoding="utf-8"))
        self.routes = [(re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path)), operations)
                       for path, operations in self.spec["paths"].items()]

    def resolve(self, schema: Any) -> dict[str, Any]:
        """``schema`` with its ``$ref`` followed and its ``allOf`` merged."""
        if not isinstance(schema, dict):
            return {}
        while "$ref" in schema:
            node: Any = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}}
            for part in schema["allOf"]:
                merged["properties"].update(self.resolve(part).get("properties", {}))
            return merged
        return schema

    def answer_schema(self, method: str, path: str, status: int) -> dict[str, Any]:
        for pattern, operations in self.routes:
            if pattern.fullmatch(path) and method.lower() in operations:
                responses = operations[method.lower()].get("responses", {})
                answer = responses.get(str(status)) or responses.get("200") or {}
                content = answer.get("content", {}).get("application/json", {})
                return self.resolve(content.get("schema", {}))
        return {}

    def has_body(self, method: str, path: str) -> bool:
        """Whether the contract's 200 to this call has a JSON body."""
        for pattern, operations in self.routes:
            if pattern.fullmatch(path) and method.lower() in operations:
                answer = operations[method.lower()].get("responses", {}).get("200") or {}
                return "application/json" in (answer.get("content") or {})
        return True

    def error_body(self, method: str, path: str, status: int) -> Any:
        """An error body of the contract's shape for this call (ErrorModel's when any of its
        error answers is one, else a ``detail`` as the Web API's are)."""
        if any("error" in self.answer_schema(method, path, code).get("properties", {})
               for code in (status, 400, 404, 500)):
            return {"error": {"code": "FUZZ_ERROR", "message": "fuzz: refused"}}
        return {"detail": "fuzz: refused"}

    def positions(self, schema: Any, value: Any, where: tuple[Any, ...] = ()
                  ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any], Any]]:
        """Every place in an answer's body, with the schema the contract gives it."""
        schema = self.resolve(schema)
        for option in schema.get("oneOf", schema.get("anyOf", [])):
            option = self.resolve(option)
            if _json_type(value) == option.get("type"):
                schema = option
                break
        yield where, schema, value
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties", {})
            for key, item in value.items():
                yield from self.positions(properties.get(key, extra), item, (*where, key))
        elif isinstance(value, list):
            for i, item in enumerate(value[:50]):
                yield from self.positions(schema.get("items", {}), item, (*where, i))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number",
            type(None): "null"}.get(type(value), "?")


#: Values of another type than the one the contract gives, by that type.
WRONG_TYPE: dict[str, list[Any]] = {
    "string": [5, 1e308, True, [], {}, ["x"], {"value": "x"}],
    "number": ["12", "NaN", True, [], {}, "1e400", [1.0]],
    "integer": ["12", 1.5, True, [], {}, "0x10"],
    "boolean": ["true", 1, 0, "false", [], None],
    "array": [{}, "x", 1, {"0": "x"}, [None]],
    "object": [[], "x", 1, [{}], True],
}
#: Values of the contract's type that no server should send.
ODD_VALUES: dict[str, list[Any]] = {
    "string": ["", " ", "x" * 100_000, ESCAPES, "\ud800", "../../etc/passwd", "%s%n{0}",
               "C:\\Windows\\system32", "null"],
    "number": [float("nan"), float("inf"), float("-inf"), -1.0, 0.0, 1e308, -1e308, 5e-324,
               10**40],
    "integer": [-1, 0, 2**63, -(2**63), 10**40, 2**31],
    "array": [[], [None] * 3, list(range(10_000))],
    "object": [{}, {"": None}],
}


def mutate_value(rng: random.Random, key: Any, schema: dict[str, Any], value: Any
                 ) -> tuple[str, Any]:
    """(name, new value) for one place of an answer: of another type, null, out of range,
    outside its enum, an id naming nothing, a long or escaping string."""
    declared = schema.get("type") or _json_type(value)
    if declared == "null":
        declared = "string"
    how = rng.choice(["null", "type", "odd", "odd", "type"])
    if isinstance(key, str) and (key == "id" or key.endswith("_id") or key.endswith("Id")) \
            and rng.random() < 0.5:
        return "unknown-id", str(uuid.uuid4())
    if "enum" in schema and rng.random() < 0.5:
        return "outside-enum", rng.choice(["EXPLODED", "", "in_progress", ESCAPES, "x" * 5000])
    if how == "null":
        return "null", None
    if how == "type" and declared in WRONG_TYPE:
        return f"type:{declared}", rng.choice(WRONG_TYPE[declared])
    return f"odd:{declared}", rng.choice(ODD_VALUES.get(declared, [None]))


def _put(body: Any, where: tuple[Any, ...], value: Any, *, remove: bool = False) -> Any:
    if not where:
        return value
    parent = body
    for step in where[:-1]:
        parent = parent[step]
    if remove:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    return body


def mutate_body(rng: random.Random, contract: Contract, method: str, path: str, status: int,
                body: Any) -> tuple[str, Any]:
    """(mutation, body) of one answer's JSON body, by a place the contract describes."""
    places = list(contract.positions(contract.answer_schema(method, path, status), body))
    where, schema, value = rng.choice(places)
    name = ".".join(str(p) for p in where) or "$"
    roll = rng.random()
    if where and isinstance(where[-1], str) and roll < 0.2:
        return f"missing {name}", _put(body, where, None, remove=True)
    if isinstance(value, dict) and roll < 0.3:
        value.update({"fuzz_extra": ESCAPES, "__proto__": {"x": 1}, "id": value.get("id", 7)})
        return f"extra fields {name}", body
    label, new = mutate_value(rng, where[-1] if where else None, schema, value)
    return f"{label} {name}", _put(body, where, new)


def mutate_status(rng: random.Random, contract: Contract, method: str, path: str
                  ) -> tuple[str, int, Any]:
    """(mutation, status, body): an answer the contract does not list for this call, sent
    instead of the server's."""
    how = rng.choice(["200-error", "202-sync", "404-known", "204-empty", "200-empty",
                      "200-null", "409", "418"])
    if how == "200-error":
        return how, 200, contract.error_body(method, path, 400)
    if how == "202-sync":
        return how, 202, {"operationId": str(uuid.uuid4())}
    if how == "404-known":
        return how, 404, contract.error_body(method, path, 404)
    if how == "204-empty":
        return how, 204, None
    if how == "200-empty":
        return how, 200, ""
    if how == "200-null":
        return how, 200, None
    return how, int(how), contract.error_body(method, path, 400)


#: An answer whose body is not JSON (empty, an image): its bytes are passed on as they came.
_NOT_JSON: Any = object()


def _route(method: str, path: str) -> str:
    """A request's route, its ids (UUIDs, serials) folded: ``GET /scene/{id}/``."""
    return f"{method} {re.sub(r'[0-9a-f]{8}-[0-9a-f-]{27}', '{id}', path)}"


@dataclass
class Script:
    """One case's hostile answer, by kind: ``body`` and ``status`` answer the ``at``-th
    request the front sees with a mutated body (the server's, forwarded) or a status the
    contract does not list (the server never asked); ``operation`` makes every read of an
    operation after ``at`` say it still runs (or something else); ``ids`` gives a scene's
    models new ids on every read after the first."""

    rng: random.Random
    contract: Contract
    at: int
    kind: str
    seen: int = 0
    mutated: str = ""
    forwarded: list[str] = field(default_factory=list)
    #: A status answered where the contract's 200 has no body: an empty or null one is true.
    tolerated: bool = False
    _reads: int = 0
    _status: Any = None

    def answer(self, sock: socket.socket, request: Any, front: Any) -> bool:
        from tests.hostile_http import reply

        n, self.seen = self.seen, self.seen + 1
        route = _route(request.method, request.path)
        if self.kind == "status" and n == self.at:
            how, status, body = mutate_status(self.rng, self.contract, request.method,
                                              request.path)
            self.mutated = f"status:{how} {route}"
            self.tolerated = how in ("200-empty", "200-null") and not self.contract.has_body(
                request.method, request.path)
            data = b"" if body == "" or status == 204 else json.dumps(body).encode()
            return reply(status, data)(sock, request, front)
        status, headers, raw_body = front.forward(request)
        self.forwarded.append(route)
        content_type = next((v for k, v in headers if k.lower() == "content-type"),
                            "application/json")
        try:
            body = json.loads(raw_body)
        except ValueError:
            body = _NOT_JSON
        if self.kind == "operation" and route == "GET /operations/{id}/" and n >= self.at \
                and isinstance(body, dict):
            # Chosen once: "IN_PROGRESS" for ever is an operation that never ends.
            self._status = self._status or self.rng.choice(
                ["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "PENDING", "EXPLODED", 3])
            body["status"] = self._status
            body.pop("result", None)
            body["progress"] = self.rng.choice([0.0, -1.0, 1.5, float("nan"), 0.99])
            self.mutated = f"operation:never-ends {route} {body['status']!r}"
        elif self.kind == "ids" and route == "GET /scene/{id}/" and isinstance(body, dict):
            self._reads += 1
            if self._reads > 1 and isinstance(body.get("models"), list):
                for model in body["models"]:
                    if isinstance(model, dict):
                        model["id"] = str(uuid.uuid4())
                self.mutated = f"ids:change-each-read {route}"
        elif self.kind == "body" and n == self.at:
            if body is _NOT_JSON:
                self.at += 1  # nothing to mutate in this answer: the next one
            else:
                self.mutated, body = mutate_body(self.rng, self.contract, request.method,
                                                 request.path, status, body)
                self.mutated = f"body:{self.mutated} {route} {status}"
        else:
            return reply(status, raw_body, content_type=content_type)(sock, request, front)
        data = json.dumps(body, allow_nan=True).encode()
        return reply(status, data, content_type=content_type)(sock, request, front)


#: The contracts and the long-lived servers of the ``localapi`` and ``cloudapi`` kinds: each
#: a front (tests/hostile_http.py) before a real simulator, started once, with its context.
SERVED: dict[str, Any] = {}
#: States a build reaches only once a printer took its print.
PRINTED_STATES = frozenset({"print_sent", "verifying", "finished"})
#: The step limit ``run`` is given: an operation that never ends must end the step by it (the
#: default, 900 s, is a bound too, far over the run's TIME_BOUND_S; session 47's run 3 met it).
STEP_TIMEOUT_S = 45
#: How many requests a clean case made, by command: where a case's hostile answer falls.
REQUESTS: dict[str, int] = {"local": 24, "verify": 2, "fleet": 4}
#: Calls whose odd answer a run may pass over: the scene's removal at the end; the pool's
#: health check, whose failure makes it check again a second later (run 4: a 418, then back).
TOLERATED = ("DELETE /scene/{id}/", "GET /")
#: A failure must say which server, answer or step failed.
ANSWER_NAMED = re.compile(r"server|PreFormServer|Dashboard|Web API|prints feed|127\.0\.0\.1|"
                          r"step|answer|operation|scene|token")


def _build_states(path: Path) -> dict[int, str]:
    """Each build's state in a job store (none when it was never made)."""
    if not path.exists():
        return {}
    import sqlite3

    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return dict(db.execute("SELECT id, state FROM builds").fetchall())


# ---------------------------------------------------------------------------- main


def _rows(tally: Tally) -> Iterator[str]:
    by_kind: Counter[str] = Counter()
    for key, n in tally.fed.items():
        by_kind[key.split("/")[0]] += n
    yield "| kind | inputs | findings |"
    yield "|---|---|---|"
    for kind, n in sorted(by_kind.items()):
        yield f"| {kind} | {n} | {sum(1 for f in tally.findings if f.kind == kind)} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=44)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--out", type=Path, help="a folder for the work and the findings "
                        "(default: a new temporary folder)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    out = args.out or Path(tempfile.mkdtemp(prefix="pp-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    fuzzer = Fuzzer(out, args.seed, started + args.budget)
    try:
        fuzzer.run(kinds)
    finally:
        if WEB_FRONT:
            WEB_FRONT[1].__exit__(None, None, None)
        for context in reversed(SERVED.get("contexts", [])):
            context.__exit__(None, None, None)
        summary = {"seed": args.seed, "budget_s": args.budget,
                   "seconds": round(time.monotonic() - started, 1),
                   "fed": dict(sorted(fuzzer.tally.fed.items())),
                   "findings": [asdict(f) for f in fuzzer.tally.findings]}
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        print("\n".join(_rows(fuzzer.tally)))
        print(f"{len(fuzzer.tally.findings)} findings; summary in {out / 'summary.json'}")
        if not args.keep:
            shutil.rmtree(out / "work", ignore_errors=True)
            shutil.rmtree(out / "home", ignore_errors=True)
    return 1 if fuzzer.tally.findings else 0


if __name__ == "__main__":
    sys.exit(main())
