"""Saying plainly what PyYAML's syntax errors mean, for recipes and settings alike, and
writing the key path of a problem the way both show it (:func:`format_json_path`).

:func:`safe_load` is ``yaml.safe_load`` for files users write (settings, sidecars): a value
PyYAML cannot build (a date that does not exist, ``2024-02-30``; an integer of more digits
than Python converts) raises a ``ValueError`` from deep in PyYAML, which no caller expects
from a parser; here it is a ``yaml.YAMLError`` at the value's line and column, worded by
:func:`describe_bad_value`.

:func:`node_problems` is the one judge of a composed document's shape, for the recipe
loader and :func:`safe_load` alike: a key given twice (PyYAML keeps the last in silence), an
alias inside the value it names, and more than :data:`MAX_NODES` values once aliases are
expanded (an "alias bomb": ten lines that each name the line before ten times are a billion
values to whatever walks them, though PyYAML builds them as shared references at once).
PyYAML's composer puts the anchored node itself where an alias is written, positions and
all, so an alias problem would be placed at the anchor, never at the line that names it;
:func:`composed` records where each alias is written (:class:`AliasUse`), and the problem is
placed there, its anchor named in the message.

PyYAML reports a tab used for indentation as "found character '\\t' that cannot start any
token", which users do not read as "you typed a tab". :func:`describe_yaml_error` turns a
``yaml.YAMLError`` into a 1-based position and a sentence that names the usual causes, and
:func:`yaml_problem` into the :class:`~preform_pipeline.errors.Problem` every reader shows
(``file:line:col: $.path: message``: recipes, settings files and sidecars alike).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from preform_pipeline.errors import Problem
from preform_pipeline.wording import quoted

__all__ = [
    "MAX_NODES",
    "AliasUse",
    "AliasUses",
    "NodeProblem",
    "composed",
    "describe_bad_value",
    "describe_not_finite",
    "describe_unsupported_tag",
    "describe_yaml_error",
    "format_json_path",
    "is_bad_value",
    "is_finite",
    "node_problems",
    "safe_load",
    "shape_problem",
    "yaml_problem",
]


def format_json_path(path: Sequence[str | int]) -> str:
    """``("steps", 2, "auto_support")`` -> ``$.steps[2].auto_support``."""
    out = "$"
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif elem.isidentifier():
            out += f".{elem}"
        else:
            out += "[" + repr(elem) + "]"
    return out

_TAB: Final = "a tab character; YAML indents with spaces only (replace the tab with spaces)"
_COLON: Final = ("a ':' where a value was expected (quote values that contain ': ', or fix the "
                 "indentation of this line)")
_KEY_COLUMN: Final = ("this line is not indented like the keys above it: the keys of one "
                      "mapping start in the same column (indent it as far as its neighbours, "
                      "or as far as the key it belongs under)")
_LIST_ITEM: Final = ("a line in a list that is neither an item ('- ' at the column of the "
                     "others) nor indented under one")
#: What PyYAML's words mean: ``(context, problem, plain)``, matched as parts of the error's
#: context and problem. The recipe loader composes with libyaml (the C loader), whose words
#: differ from the pure-Python parser's (session 44 found a recipe's over-indented key said
#: as libyaml's raw "mapping values are not allowed in this context"): both are listed.
_EXPLAINED: Final[tuple[tuple[str, str, str], ...]] = (
    ("", "found character '\\t' that cannot start any token", _TAB),
    ("", "found a tab character", _TAB),
    ("", "mapping values are not allowed here", _COLON),
    ("", "mapping values are not allowed in this context", _COLON),
    ("block mapping", "did not find expected key", _KEY_COLUMN),
    ("block mapping", "expected <block end>, but found", _KEY_COLUMN),
    ("block collection", "did not find expected '-' indicator", _LIST_ITEM),
    ("block collection", "expected <block end>, but found", _LIST_ITEM),
)


def describe_yaml_error(
    exc: yaml.YAMLError, text: str = ""
) -> tuple[int | None, int | None, str]:
    """``(line, column, message)`` of a YAML syntax error; positions are 1-based or None.

    ``text`` is the document: the character at the error's position tells a tab apart (the
    C parser's message does not show it).
    """
    if isinstance(exc, yaml.reader.ReaderError):
        return _unprintable(text)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or "")
        if isinstance(exc, (_UnreadableValue, _Refused)):
            return (*_position(mark), problem)
        if mark is not None and _char_at(text, int(mark.line), int(mark.column)) == "\t":
            return (*_position(mark), f"YAML syntax error: {_TAB}")
        long_key = _long_key(mark, text)
        if long_key is not None:
            return long_key
        context = str(exc.context or "")
        for within, raw, plain in _EXPLAINED:
            if within in context and raw in problem:
                if within and not _misindented(exc, text):
                    break  # the parser's own words: a false "indented" is worse
                return (*_position(mark), f"YAML syntax error: {plain}")
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return (*_position(mark), f"YAML syntax error: {what}")
    return None, None, f"YAML error: {exc}"


#: PyYAML's longest simple key (one written without '? '), in characters up to its ':'.
_MAX_SIMPLE_KEY: Final = 1024


def _long_key(mark: Any, text: str) -> tuple[int | None, int | None, str] | None:
    """The error of a key over :data:`_MAX_SIMPLE_KEY` characters, or None: the parser stopped
    at the ':' after it and says "mapping values are not allowed", "could not find expected
    ':'" or "expected ',' or '}'", whose usual advice (quote values holding ': ') is untrue."""
    if mark is None:
        return None
    line, column = int(mark.line), int(mark.column)
    if _char_at(text, line, column) != ":":
        return None
    before = text.splitlines()[line][:column]
    start = len(before) - len(before.lstrip(" "))
    while before.startswith("- ", start) or before.startswith("? ", start):
        start = len(before) - len(before[start + 2:].lstrip(" "))
    if "{" in before[start:] or "[" in before[start:]:  # in a flow collection: its last key
        start = max(before.rfind(c) for c in "{[,") + 1
        start += len(before[start:]) - len(before[start:].lstrip(" "))
    key = before[start:].rstrip(" ")
    if len(key) <= _MAX_SIMPLE_KEY or ": " in key:  # a long value, then a second ':'
        return None
    return line + 1, start + 1, (
        f"YAML syntax error: a key of {len(key):,} characters; YAML reads a key of at most "
        f"{_MAX_SIMPLE_KEY:,} characters before its ':' (no key of a recipe or settings file "
        "is that long: shorten it, or look for a value written where a key should be)")


def _unprintable(text: str) -> tuple[int | None, int | None, str]:
    """Where the first character YAML does not allow stands, and what it is.

    PyYAML's reader says "unacceptable character #x0000 ... in "<unicode string>", position
    28": an offset in characters (bytes from the C parser), no line. Both readers refuse the
    first such character of the text, so it is found here again by the same rule."""
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found is None:  # not from this text: say what there is to say
        return None, None, "YAML syntax error: a character YAML does not allow"
    before = text[:found.start()]
    line = before.count("\n") + 1
    column = found.start() - (before.rfind("\n") + 1) + 1
    code = ord(found.group())
    kind = ("a control character" if code < 0x20 or 0x7F <= code <= 0x9F
            else "a character YAML does not allow")
    return line, column, (
        f"YAML syntax error: {kind} (U+{code:04X}) is not allowed in YAML text; remove it "
        "(a file of such characters throughout is not a text file)")


def _misindented(exc: yaml.MarkedYAMLError, text: str) -> bool:
    """Whether a block's "expected key / '-' indicator" error is a line's indentation: what
    the parser stopped at begins its line, and (in a mapping) not at the column of the
    mapping's keys. Text after a quoted value (``a: "x" y``) or a list item among a
    mapping's keys (``- b`` under ``a: 1``) is not, and keeps the parser's words."""
    at, start = exc.problem_mark, exc.context_mark
    if at is None or start is None:
        return False
    lines = text.splitlines()
    line, column = int(at.line), int(at.column)
    if not 0 <= line < len(lines) or lines[line][:column].strip(" "):
        return False
    return "block collection" in str(exc.context) or column != int(start.column)


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


def _position(mark: object) -> tuple[int | None, int | None]:
    if mark is None:
        return None, None
    return int(getattr(mark, "line", 0)) + 1, int(getattr(mark, "column", 0)) + 1


#: What a scalar of each core tag was meant to be, for :func:`describe_bad_value`.
_KINDS: Final = {"int": "an integer", "float": "a number", "timestamp": "a date",
                 "bool": "true or false"}
#: How much of a bad value a message repeats.
_SHOWN_CHARS: Final = 30


def describe_bad_value(tag: str, text: str, exc: ValueError) -> str:
    """Why the scalar ``text`` (tagged ``tag``) could not be built, and what helps."""
    kind = _KINDS.get(tag.rsplit(":", 1)[-1], "a value")
    shown = text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
    # Python's own wording for the digit limit ends in advice for programmers.
    reason = (f"over {sys.get_int_max_str_digits()} digits"
              if "integer string conversion" in str(exc) else str(exc))
    return f"{shown!r} cannot be read as {kind} ({reason}); quote it if it is meant as text"


def is_finite(value: Any) -> bool:
    """False for a number that is NaN, infinite, or an integer beyond a float; True for
    anything else (a text is not a number to judge)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return False
    return True


def describe_not_finite(text: str, document: str) -> str:
    """Why the number written ``text`` is refused in a ``document`` ("recipe", "settings
    file"): every number of either is a size, a time, a count or an angle, and NaN compares
    false with any minimum (so ``.nan`` passed every bound) while an integer beyond a float
    ended the reader with an OverflowError."""
    return (f"{quoted(text)} is not a finite number; NaN, infinities and numbers beyond "
            f"about 1.8e308 are of no use in a {document}")


@dataclass(frozen=True)
class AliasUse:
    """Where an alias is written (``mark``, PyYAML's, 0-based), the anchor it names, and
    where the anchored value is written (``anchored``)."""

    mark: Any
    anchor: str
    anchored: Any


#: Each alias of a composed document by where it stands: ``(id(parent), index)``, the index
#: an item's position in a sequence, or ``id`` of the key node a mapping value is given for.
AliasUses = dict[tuple[int, int | None], AliasUse]


def _edge(parent: yaml.Node, index: object) -> tuple[int, int | None]:
    """The :data:`AliasUses` key of the child ``index`` of ``parent`` (as PyYAML's composer
    names it: an int in a sequence, the key node for a mapping's value, None for a key)."""
    if index is None or isinstance(index, int):
        return id(parent), index
    return id(parent), id(index)


class _AliasRecorder(yaml.SafeLoader):
    """A pure-Python ``SafeLoader`` that records where each alias is written
    (:data:`AliasUses`); the C loader composes without a hook for it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_uses: AliasUses = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        node: Any = super().compose_node(parent, index)  # the anchored node itself
        self.alias_uses[_edge(parent, index)] = AliasUse(event.start_mark, str(event.anchor),
                                                         node.start_mark)
        return node


class _UnreadableValue(yaml.constructor.ConstructorError):
    """A scalar PyYAML parsed but could not build: a value error, not a syntax error."""


class _Refused(yaml.composer.ComposerError):
    """A document whose shape :func:`node_problems` refuses: the first of its problems."""

    def __init__(self, shape: NodeProblem) -> None:
        super().__init__(None, None, shape.message, shape.mark)
        self.shape = shape


def shape_problem(exc: yaml.YAMLError) -> NodeProblem | None:
    """The :func:`node_problems` problem for which :func:`safe_load` refused a document (it
    names the key path), or None for any other error."""
    return exc.shape if isinstance(exc, _Refused) else None


def describe_unsupported_tag(tag: str, document: str) -> str:
    """Why a value with an application tag (``!!python/object/apply:os.system``) is refused
    in a ``document``: files people write use YAML's core types only."""
    return f"YAML tag {tag!r} is not supported in a {document}"


class _CheckedLoader(_AliasRecorder):
    """``yaml.SafeLoader`` whose values that cannot be built are errors at their place,
    with a tag it has no type for worded as the recipe loader words it (PyYAML's "could
    not determine a constructor for the tag")."""

    document = "YAML file"

    def construct_undefined(self, node: Any) -> Any:
        raise _UnreadableValue(None, None, describe_unsupported_tag(str(node.tag),
                                                                    self.document),
                               node.start_mark)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:
            raise _UnreadableValue(
                None, None, describe_bad_value(str(node.tag), str(node.value), exc),
                node.start_mark,
            ) from None


#: Upper bound on the values one document holds once its aliases are expanded.
MAX_NODES: Final = 100_000
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class NodeProblem:
    """A problem in a composed document's shape: PyYAML's ``mark`` (0-based) where it is
    written, the key path it concerns and what it is. ``fatal``: the document cannot be
    built (it would never end, or is too large to walk); else the value is left out."""

    mark: Any
    path: tuple[str | int, ...]
    message: str
    fatal: bool = False


def composed(text: str) -> tuple[yaml.Node | None, AliasUses]:
    """``text`` composed by the pure-Python loader, with where each alias is written: for a
    caller that composed it with the C loader (which keeps no alias's place) and found an
    alias problem, to place that problem where the alias is written."""
    loader = _AliasRecorder(text)
    try:
        return loader.get_single_node(), loader.alias_uses
    finally:
        loader.dispose()


#: The first alias on the way to a value, and the key path where it is written.
_Via = tuple[AliasUse, tuple[str | int, ...]]
#: One step of :func:`node_problems`' walk: the node, its key path, whether the walk leaves
#: it, the alias written for it, and the first alias on the way to it.
_Visit = tuple[yaml.Node, tuple[str | int, ...], bool, AliasUse | None, _Via | None]


def node_problems(root: yaml.Node, uses: AliasUses | None = None) -> Iterator[NodeProblem]:
    """The problems of the composed document ``root``, in document order: each key given
    twice in one mapping (merged keys, ``<<: *base``, may be given again), an alias inside
    the value it names, and, at the value that passes it, more than :data:`MAX_NODES`
    values counted with every alias expanded. Iterative: a deep document does not recurse.

    With ``uses`` (:func:`composed`), an alias problem is placed where the alias is written:
    a recursive one at the alias inside its own value; a document too large at the first
    alias on the way to the value that passed the bound (the line that made it huge), with
    the anchor it names. Without, both are placed at the anchored value."""
    known = uses or {}
    count = 0
    inside: set[int] = set()  # the collections being walked: an alias to one loops
    # (node, key path, leaving, the alias written for it, the first alias on its way)
    stack: list[_Visit] = [(root, (), False, None, None)]
    while stack:
        node, path, leaving, alias, via = stack.pop()
        if leaving:
            inside.discard(id(node))
            continue
        count += 1
        if count > MAX_NODES:
            yield _too_large(node, via)
            return
        if id(node) in inside:
            yield _recursive(node, path, alias)
            return
        if isinstance(node, yaml.ScalarNode):
            continue
        inside.add(id(node))
        children: list[_Visit] = []
        if isinstance(node, yaml.SequenceNode):
            children = [_child(known, node, via, item, index, (*path, index))
                        for index, item in enumerate(node.value)]
        else:
            first: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    children += [_child(known, node, via, key_node, None, path),
                                 _child(known, node, via, value_node, key_node, path)]
                    continue
                key = str(key_node.value)
                if key_node.tag != _MERGE_TAG and key in first:
                    yield NodeProblem(key_node.start_mark, (*path, key),
                                      f"duplicate key {key!r} (first given at line "
                                      f"{int(first[key].line) + 1})")
                    continue
                first.setdefault(key, key_node.start_mark)
                children.append(_child(known, node, via, value_node, key_node,
                                       path if key_node.tag == _MERGE_TAG else (*path, key)))
        stack.append((node, path, True, alias, via))
        stack.extend(reversed(children))


def _child(uses: AliasUses, parent: yaml.Node, via: _Via | None, item: yaml.Node,
           index: object, path: tuple[str | int, ...]) -> _Visit:
    """The walk's step to ``item``, the child ``index`` of ``parent``: with the alias
    written for it, and the first alias on the way to it (``via``, or this one)."""
    used = uses.get(_edge(parent, index))
    return item, path, False, used, via if via is not None or used is None else (used, path)


def _line(mark: Any) -> int:
    return int(mark.line) + 1


def _too_large(node: yaml.Node, via: _Via | None) -> NodeProblem:
    """The document is over :data:`MAX_NODES` values, passed at ``node``: placed at the
    first alias on the way to it (``via``) where that is known, else at ``node``."""
    head = f"too large: over {MAX_NODES} values once its aliases (*name) are expanded"
    if via is None:
        return NodeProblem(node.start_mark, (), f"{head}; write each value out once",
                           fatal=True)
    use, path = via
    return NodeProblem(use.mark, path, (
        f"{head}, reached inside *{use.anchor} here (&{use.anchor} at line "
        f"{_line(use.anchored)}); write each value out once"), fatal=True)


def _recursive(node: yaml.Node, path: tuple[str | int, ...], alias: AliasUse | None
               ) -> NodeProblem:
    """An alias inside the value it names: placed at the alias where that is known."""
    if alias is None:
        return NodeProblem(node.start_mark, path, "recursive alias", fatal=True)
    return NodeProblem(alias.mark, path, (
        f"recursive alias: *{alias.anchor} is inside the value it names (&{alias.anchor} at "
        f"line {_line(alias.anchored)}), which would never end"), fatal=True)


def yaml_problem(exc: yaml.YAMLError, text: str, file: str) -> Problem:
    """The problem ``exc`` (raised reading ``text``, the document ``file``) is, as every
    reader of YAML shows one: at its line and column, named by the key path a shape problem
    concerns (:func:`shape_problem`) or ``$``. A recipe, a settings file and a sidecar with
    the same mistake are then told it in the same words, ``file:3:1: $: YAML syntax error:
    ...``, which editors and terminals open at the line."""
    line, column, message = describe_yaml_error(exc, text)
    shape = shape_problem(exc)
    return Problem(file, line, column, "$" if shape is None else format_json_path(shape.path),
                   message)


def is_bad_value(exc: yaml.YAMLError) -> bool:
    """Whether ``exc`` is a value :func:`safe_load` could not build (the syntax was fine)."""
    return isinstance(exc, _UnreadableValue)


# PyYAML calls the constructor registered for "no other tag" as a plain function: register
# the override, or SafeConstructor's own would still be called.
_CheckedLoader.add_constructor(None, _CheckedLoader.construct_undefined)


class _FiniteLoader(_CheckedLoader):
    """A :class:`_CheckedLoader` that also refuses, at its place, a number that is not
    finite (:func:`is_finite`) in the document it names."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        value = super().construct_object(node, deep=deep)
        if isinstance(node, yaml.ScalarNode) and not is_finite(value):
            raise _UnreadableValue(None, None, describe_not_finite(str(node.value),
                                                                   self.document),
                                   node.start_mark)
        return value


def safe_load(text: str, *, finite_in: str | None = None) -> Any:
    """``yaml.safe_load(text)``, with a value that cannot be built a ``yaml.YAMLError``;
    with ``finite_in`` (the document's kind, "settings file"), a number that is not finite
    is one too."""
    # What yaml.load does (a SafeLoader: no application tags), with the document named and
    # its shape judged before anything is built.
    loader: _CheckedLoader
    if finite_in is None:
        loader = _CheckedLoader(text)
    else:
        loader = _FiniteLoader(text)
        loader.document = finite_in
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        refused = next(node_problems(node, loader.alias_uses), None)
        if refused is not None:
            raise _Refused(refused)
        return loader.construct_document(node)
    finally:
        loader.dispose()
