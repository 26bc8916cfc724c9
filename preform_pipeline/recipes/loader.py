"""Reading recipe YAML with a position for every key and value, and merging ``extends:``.

PyYAML's ``compose`` gives a node tree whose nodes carry start marks; this module turns it into
a small tree of :class:`YamlNode` (mapping, sequence or scalar, each knowing the file, line and
column of its value and, for mapping values, of its key). Every later check reports through
:meth:`Document.position`, so an error in a value that came from a base recipe points into the
base file.

Beyond plain loading:

* duplicate keys are errors (PyYAML's loader silently keeps the last one), judged with alias
  bombs and recursive aliases by :func:`preform_pipeline.yamlerrors.node_problems`, the rule
  settings files and sidecars are read by too;
* scalars are built with YAML's core types only (null, bool, int, float, str); timestamps and
  other implicit types stay strings, and application tags (``!python/...``) are refused;
* merge keys (``<<: *defaults``) work, with positions pointing at the anchored text.

``extends: base.yaml`` (relative to the recipe's folder) deep-merges the recipe onto its base:
mappings merge key by key, anything else (lists included) is replaced, a ``null`` value
removes what the base set, and ``name`` is never inherited. Cycles are reported at the
``extends`` value that closes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Final, Literal

import yaml

from preform_pipeline.errors import Problem
from preform_pipeline.recipes.model import Position
from preform_pipeline.textfiles import SAVE_AS_UTF8, not_utf8, read_small_text
from preform_pipeline.yamlerrors import (
    MAX_NODES,
    describe_bad_value,
    describe_not_finite,
    describe_unsupported_tag,
    format_json_path,
    is_finite,
    node_problems,
    yaml_problem,
)
from preform_pipeline.yamlerrors import (
    composed as alias_composed,
)

__all__ = [
    "EXTENDS_KEY",
    "MAX_RECIPE_BYTES",
    "MAX_NODES",
    "Document",
    "JsonPath",
    "YamlNode",
    "load_document",
    "parse_yaml",
]

JsonPath = tuple[str | int, ...]

EXTENDS_KEY: Final = "extends"
#: Keys a recipe never inherits from its base.
NOT_INHERITED: Final[frozenset[str]] = frozenset({"name", EXTENDS_KEY})
#: A recipe is a page of YAML; a file larger than this is the wrong file.
MAX_RECIPE_BYTES: Final = 1024 * 1024
#: Upper bound on the length of an ``extends`` chain.
MAX_EXTENDS_DEPTH: Final = 16

_CORE = "tag:yaml.org,2002:"
_TYPED_SCALAR_TAGS: Final = frozenset(_CORE + t for t in ("null", "bool", "int", "float"))
#: The documents whose every number is a size, a time, a count or an angle: one that is not
#: finite is refused where it stands (a sidecar's values are text).
FINITE_KINDS: Final = frozenset({"recipe", "settings file"})
_TEXT_SCALAR_TAGS: Final = frozenset({_CORE + "str", _CORE + "timestamp", "!"})
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()


@dataclass(eq=False)
class YamlNode:
    """A mapping, sequence or scalar with the positions of its value and its key."""

    kind: Literal["map", "seq", "scalar"]
    pos: Position
    key_pos: Position | None = None
    mapping: dict[str, YamlNode] = field(default_factory=dict)
    items: list[YamlNode] = field(default_factory=list)
    value: Any = None

    def child(self, elem: str | int) -> YamlNode | None:
        if self.kind == "map" and isinstance(elem, str):
            return self.mapping.get(elem)
        if self.kind == "seq" and isinstance(elem, int) and 0 <= elem < len(self.items):
            return self.items[elem]
        return None

    def to_python(self) -> Any:
        if self.kind == "map":
            return {k: v.to_python() for k, v in self.mapping.items()}
        if self.kind == "seq":
            return [v.to_python() for v in self.items]
        return self.value

    def walk(self, path: JsonPath = ()) -> Iterator[tuple[JsonPath, YamlNode]]:
        """Every node below and including this one, with its path."""
        yield path, self
        if self.kind == "map":
            for key, node in self.mapping.items():
                yield from node.walk((*path, key))
        elif self.kind == "seq":
            for index, node in enumerate(self.items):
                yield from node.walk((*path, index))


@dataclass
class Document:
    """A recipe after ``extends`` merging: the node tree, its data and the files it came from."""

    root: YamlNode | None
    problems: list[Problem]
    #: ``(path, display name)`` of every file merged, the base first, the recipe last.
    chain: list[tuple[Path, str]]
    display: str
    #: False when a file of the chain could not be read or merged: the data is partial, and
    #: checking it would only add noise to the problems already found.
    complete: bool = True

    @property
    def data(self) -> Any:
        return self.root.to_python() if self.root is not None else None

    def node_at(self, path: Sequence[str | int]) -> tuple[YamlNode | None, int]:
        """The deepest node along ``path`` and how many path elements it matched."""
        node = self.root
        if node is None:
            return None, 0
        for depth, elem in enumerate(path):
            nxt = node.child(elem)
            if nxt is None:
                return node, depth
            node = nxt
        return node, len(path)

    def position(self, path: Sequence[str | int], *, key: bool = False) -> Position:
        """Where ``path`` is written: its value, or its key with ``key=True``.

        A mapping or sequence value is shown at its key. A path that does not exist (a missing
        required key) points at the deepest ancestor that does, at its key where it has one,
        so the user lands on ``scene:``.
        """
        node, depth = self.node_at(path)
        if node is None:
            return Position(self.display, 1, 1)
        full = depth == len(path)
        # A mapping or list is best shown at its key (``label:``), not at its first entry.
        if (key or not full or node.kind != "scalar") and node.key_pos is not None:
            return node.key_pos
        return node.pos

    def problem(
        self,
        path: Sequence[str | int],
        message: str,
        suggestion: str | None = None,
        *,
        key: bool = False,
        reads: Sequence[Sequence[str | int]] = (),
    ) -> Problem:
        pos = self.position(path, key=key)
        return Problem(pos.file, pos.line, pos.column, format_json_path(path), message, suggestion,
                       tuple(format_json_path(other) for other in reads))


def _pos(file: str, mark: Any) -> Position:
    return Position(file, int(mark.line) + 1, int(mark.column) + 1)


class _Builder:
    """Converts one composed PyYAML tree, collecting problems instead of stopping."""

    def __init__(self, file: str, kind: str = "recipe") -> None:
        self.file = file
        self.kind = kind
        self.problems: list[Problem] = []

    def problem(self, mark: Any, message: str, path: JsonPath = ()) -> None:
        pos = _pos(self.file, mark)
        self.problems.append(
            Problem(self.file, pos.line, pos.column, format_json_path(path), message)
        )

    def build(self, node: Any, path: JsonPath, key_pos: Position | None) -> YamlNode:
        """``node`` as a :class:`YamlNode`; ``node_problems`` found no fatal problem in it."""
        pos = _pos(self.file, node.start_mark)
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _CORE + "map", path)
            return self._mapping(node, path, pos, key_pos)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _CORE + "seq", path)
            items = [self.build(n, (*path, i), None) for i, n in enumerate(node.value)]
            return YamlNode("seq", pos, key_pos, items=items)
        return YamlNode("scalar", pos, key_pos, value=self._scalar(node, path))

    def _scalar(self, node: Any, path: JsonPath) -> Any:
        tag: str = node.tag
        if tag in _TYPED_SCALAR_TAGS:
            try:
                value = _constructor.construct_object(node, deep=True)
            except ValueError as exc:  # an integer of more digits than Python converts
                self.problem(node.start_mark, describe_bad_value(tag, str(node.value), exc),
                             path)
                return str(node.value)
            if self.kind in FINITE_KINDS and not is_finite(value):
                self.problem(node.start_mark, describe_not_finite(str(node.value), self.kind),
                             path)
                return str(node.value)
            return value
        if tag not in _TEXT_SCALAR_TAGS:
            self.problem(node.start_mark, describe_unsupported_tag(tag, self.kind),
                         path)
        # str, and implicit types (timestamps) kept as the text the user wrote.
        return str(node.value)

    def _check_tag(self, node: Any, expected: str, path: JsonPath) -> None:
        if node.tag not in (expected, "!"):
            self.problem(
                node.start_mark, describe_unsupported_tag(str(node.tag), self.kind), path
            )

    def _mapping(
        self, node: Any, path: JsonPath, pos: Position, key_pos: Position | None
    ) -> YamlNode:
        explicit: dict[str, YamlNode] = {}
        merged: dict[str, YamlNode] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge":
                self._merge_into(merged, value_node, path)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node.start_mark, "mapping keys must be plain text", path)
                continue
            key = str(key_node.value)
            if key in explicit:  # given twice: node_problems said so; the first one counts
                continue
            explicit[key] = self.build(value_node, (*path, key),
                                       _pos(self.file, key_node.start_mark))
        for key, child in merged.items():
            explicit.setdefault(key, child)
        return YamlNode("map", pos, key_pos, mapping=explicit)

    def _merge_into(self, merged: dict[str, YamlNode], value: Any, path: JsonPath) -> None:
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problem(source.start_mark, "'<<' merges mappings only", path)
                continue
            built = self.build(source, path, None)
            for key, child in built.mapping.items():
                merged.setdefault(key, child)  # earlier merge sources win, as YAML says


def parse_yaml(
    text: str, file: str, *, kind: str = "recipe"
) -> tuple[YamlNode | None, list[Problem]]:
    """The node tree of one YAML document, and the problems found reading it; ``kind``
    names the document in them ("recipe", "settings file")."""
    try:
        composed = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        return None, [yaml_problem(exc, text, file)]
    if composed is None:
        return None, [Problem(file, 1, 1, "$", f"the file is empty; a {kind} is a YAML mapping")]
    shape = list(node_problems(composed))
    if any(p.fatal for p in shape):
        # An alias problem: composed again by the loader that keeps where each alias is
        # written, to place it there (the C loader, fast for every good recipe, keeps none).
        try:
            again, uses = alias_composed(text)
        except yaml.YAMLError:  # not expected of what the C loader took: placed as found
            again, uses = None, {}
        shape = list(node_problems(again, uses)) if again is not None else shape
    found = [Problem(file, int(p.mark.line) + 1, int(p.mark.column) + 1,
                     format_json_path(p.path), p.message) for p in shape]
    if any(p.fatal for p in shape):
        return None, found
    builder = _Builder(file, kind)
    root = builder.build(composed, (), None)
    return root, found + builder.problems


def _merge(base: YamlNode, over: YamlNode) -> YamlNode:
    """``over`` deep-merged onto ``base``: mappings merge, null deletes, the rest replaces."""
    if base.kind != "map" or over.kind != "map":
        return over
    out: dict[str, YamlNode] = {}
    for key, child in base.mapping.items():
        if key not in over.mapping:
            out[key] = child
            continue
        replacement = over.mapping[key]
        if replacement.kind == "scalar" and replacement.value is None:
            continue
        out[key] = _merge(child, replacement)
    for key, child in over.mapping.items():
        if key not in out and key not in base.mapping:
            out[key] = child
    return YamlNode("map", over.pos, over.key_pos, mapping=out)


@dataclass
class _ChainState:
    problems: list[Problem] = field(default_factory=list)
    chain: list[tuple[Path, str]] = field(default_factory=list)
    broken: bool = False

    def fail(self, problem: Problem) -> None:
        self.problems.append(problem)
        self.broken = True


def load_document(path: Path | str, *, display: str | None = None) -> Document:
    """Read the recipe at ``path`` and merge its ``extends`` chain; problems are collected."""
    path = Path(path)
    shown = display if display is not None else str(path)
    state = _ChainState()
    root = _load_chain(path, shown, state, stack=[], via=None)
    return Document(
        root, state.problems, state.chain, shown, complete=root is not None and not state.broken
    )


def _at(via: Problem | None, what: str) -> Problem | None:
    """``via`` (the ``extends`` naming a base recipe) saying ``what`` of that base."""
    if via is None:
        return None
    return Problem(via.file, via.line, via.column, via.json_path, f"{via.message} {what}")


def _load_chain(
    path: Path,
    shown: str,
    state: _ChainState,
    *,
    stack: list[Path],
    via: Problem | None,
) -> YamlNode | None:
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            state.fail(Problem(shown, None, None, "$",
                               f"is over {MAX_RECIPE_BYTES} bytes; a recipe is a page of YAML"))
            return None
        text = read_small_text(path, max_bytes=MAX_RECIPE_BYTES, encoding="utf-8-sig")
    except FileNotFoundError:
        state.fail(_at(via, "not found") or Problem(shown, None, None, "$", "file not found"))
        return None
    except IsADirectoryError:
        state.fail(_at(via, "is a folder, not a recipe file")
                   or Problem(shown, None, None, "$", "is a folder, not a recipe file"))
        return None
    except UnicodeDecodeError as exc:
        state.fail(_at(via, f"cannot be read ({not_utf8(exc)}; {SAVE_AS_UTF8})")
                   or Problem(shown, None, None, "$", f"{not_utf8(exc)}; {SAVE_AS_UTF8}"))
        return None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        state.fail(_at(via, f"cannot be read ({reason})")
                   or Problem(shown, None, None, "$", f"cannot read the file: {reason}"))
        return None
    node, found = parse_yaml(text, shown)
    state.problems.extend(found)
    if node is None:
        state.broken = True
        return None
    if node.kind != "map":
        state.fail(
            Problem(shown, node.pos.line, node.pos.column, "$",
                    "a recipe is a YAML mapping of keys (scene:, steps:, ...)")
        )
        return None
    stack = [*stack, path.resolve()]
    extends = node.mapping.get(EXTENDS_KEY)
    own = YamlNode(
        "map", node.pos, node.key_pos,
        mapping={k: v for k, v in node.mapping.items() if k != EXTENDS_KEY},
    )
    if extends is None or (extends.kind == "scalar" and extends.value is None):
        state.chain.append((path, shown))
        return own
    ext_path: JsonPath = (EXTENDS_KEY,)

    def at_extends(message: str) -> Problem:
        return Problem(shown, extends.pos.line, extends.pos.column,
                       format_json_path(ext_path), message)

    state.chain.append((path, shown))
    if extends.kind != "scalar" or not isinstance(extends.value, str) or not extends.value:
        state.fail(at_extends("extends names one base recipe file, relative to this one"))
        return own
    if "\0" in extends.value:
        # No file's name holds one (resolving it raised ValueError: exit 70).
        state.fail(at_extends("extends names a file; a file's name holds no NUL character"))
        return own
    base_path = path.parent / extends.value
    # As written, joined to this file's folder: "." and doubled slashes go, ".." stays.
    # normpath folded "missing/.." away too, so a base the open did not find (its folder is
    # missing) was named by a path that exists (session 44).
    base_shown = str(PurePath(os.path.dirname(shown), extends.value))
    resolved = base_path.resolve()
    if resolved in stack:
        names = [p.name for p in stack[stack.index(resolved):]]
        state.fail(at_extends(f"extends cycle: {' -> '.join([*names, resolved.name])}"))
        return own
    if len(stack) > MAX_EXTENDS_DEPTH:
        state.fail(at_extends(f"extends chain longer than {MAX_EXTENDS_DEPTH} files"))
        return own
    position = len(state.chain) - 1
    base = _load_chain(
        base_path, base_shown, state, stack=stack,
        via=at_extends(f"base recipe {base_shown!r}"),
    )
    # The chain lists bases first: move this file after everything its base pulled in.
    state.chain.append(state.chain.pop(position))
    if base is None:
        return own
    inherited = YamlNode(
        "map", base.pos, base.key_pos,
        mapping={k: v for k, v in base.mapping.items() if k not in NOT_INHERITED},
    )
    return _merge(inherited, own)
