"""The step graph of one build: which Local API operation runs after which.

A build's graph starts with two synthetic nodes the recipe does not list, ``create_scene`` and
``import_models`` (``scan_to_model`` when the recipe imports dental scans), followed by the
recipe's steps. Edges come from two rules:

* **Recipe order.** Every node needs the one listed before it. Operations on one scene are
  never sent in parallel (parallel edits to a scene silently lose changes), so the graph of a
  single build is a chain, and the recipe's order is the order the operations run in.
* **``after:``.** A step may name further steps that must finish first. Naming an earlier step
  is redundant but harmless; naming a later step contradicts the recipe order and is reported
  as a cycle that lists the steps involved.

The core is the standard library's :class:`graphlib.TopologicalSorter`:
:meth:`StepGraph.sorter` hands the executor a prepared sorter to drive with ``get_ready()`` /
``done()``, and :meth:`StepGraph.order` is the same order as a tuple.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from preform_pipeline.errors import StepGraphError
from preform_pipeline.recipes.model import Position, Recipe, frozen_mapping

if TYPE_CHECKING:
    from preform_pipeline.plan.builds import ModelInfo

__all__ = [
    "CREATE_SCENE",
    "IMPORT_MODELS",
    "SCAN_TO_MODEL",
    "SYNTHETIC_KINDS",
    "StepGraph",
    "StepNode",
    "compile_graph",
]

#: Synthetic node ids (and kinds): they open every build's graph.
CREATE_SCENE: Final = "create_scene"
IMPORT_MODELS: Final = "import_models"
SCAN_TO_MODEL: Final = "scan_to_model"
SYNTHETIC_KINDS: Final[frozenset[str]] = frozenset({CREATE_SCENE, IMPORT_MODELS, SCAN_TO_MODEL})


def _empty_options() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class StepNode:
    """One operation of a build.

    ``options`` is read-only and, for recipe steps, the step's options exactly as the recipe
    gives them (pipeline-only keys included); ``needs`` are the ids that must be done first.
    ``position`` points at the step in the recipe file (None for synthetic nodes).
    """

    id: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=_empty_options)
    needs: tuple[str, ...] = ()
    position: Position | None = None

    @property
    def synthetic(self) -> bool:
        """True for ``create_scene`` / ``import_models`` / ``scan_to_model``."""
        return self.kind in SYNTHETIC_KINDS


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _short(value: Any) -> str:
    """A one-line rendering of an option value for text output."""
    if isinstance(value, (list, tuple)) and len(value) > 3:
        return f"[{len(value)} items]"
    # As typed: a path "gro\u00df.stl" is not the name the user knows.
    return json.dumps(_jsonable(value), separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False)


def _mermaid_label(text: str) -> str:
    # Mermaid labels are quoted; a double quote inside must be written as an entity.
    return text.replace('"', "#quot;")


@dataclass(frozen=True)
class StepGraph:
    """The checked, acyclic step graph of one build; ``nodes`` are in execution order."""

    nodes: tuple[StepNode, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {n.id: n for n in self.nodes})

    # -- lookup -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[StepNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._index

    def __getitem__(self, node_id: str) -> StepNode:
        return self._index[node_id]

    @property
    def _index(self) -> dict[str, StepNode]:
        index: dict[str, StepNode] = self.__dict__["_by_id"]
        return index

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.nodes)

    def edges(self) -> tuple[tuple[str, str], ...]:
        """``(before, after)`` pairs, one per dependency, in execution order of ``after``."""
        return tuple((need, n.id) for n in self.nodes for need in n.needs)

    # -- ordering ---------------------------------------------------------------------------

    def order(self) -> tuple[StepNode, ...]:
        """Every node once, each after all it needs."""
        return self.nodes

    def sorter(self) -> TopologicalSorter[str]:
        """A fresh, prepared sorter over node ids: drive it with ``get_ready()`` / ``done()``."""
        sorter: TopologicalSorter[str] = TopologicalSorter()
        for node in self.nodes:
            sorter.add(node.id, *node.needs)
        sorter.prepare()
        return sorter

    # -- rendering --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible: ``{"nodes": [{id, kind, options, needs}, ...], "edges": [[a, b]]}``."""
        return {
            "nodes": [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "options": _jsonable(n.options),
                    "needs": list(n.needs),
                }
                for n in self.nodes
            ],
            "edges": [list(e) for e in self.edges()],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self) -> str:
        """One numbered line per node: id, kind when it differs, dependencies, options."""
        lines = []
        width = max((len(n.id) for n in self.nodes), default=0)
        for number, node in enumerate(self.nodes, start=1):
            line = f"{number:>2}. {node.id:<{width}}"
            if node.kind != node.id:
                line += f"  [{node.kind}]"
            if node.needs:
                line += "  after " + ", ".join(node.needs)
            if node.options:
                line += "  " + " ".join(f"{k}={_short(v)}" for k, v in node.options.items())
            lines.append(line.rstrip())
        return "\n".join(lines)

    def to_mermaid(self) -> str:
        """A Mermaid ``flowchart`` (top-down); node keys are ``n0``, ``n1``... in order."""
        keys = {n.id: f"n{i}" for i, n in enumerate(self.nodes)}
        lines = ["flowchart TD"]
        for node in self.nodes:
            label = node.id if node.kind == node.id else f"{node.id} ({node.kind})"
            lines.append(f'    {keys[node.id]}["{_mermaid_label(label)}"]')
        for before, after in self.edges():
            lines.append(f"    {keys[before]} --> {keys[after]}")
        return "\n".join(lines)


def _where(position: Position | None) -> str:
    return f"{position}: " if position is not None else ""


def _import_node(recipe: Recipe, files: Sequence[str], needs: tuple[str, ...]) -> StepNode:
    spec = recipe.import_options
    options: dict[str, Any] = {"files": list(files)}
    if spec.scan_to_model is not None:
        options.update(spec.scan_to_model)
        return StepNode(SCAN_TO_MODEL, SCAN_TO_MODEL, frozen_mapping(options), needs)
    options.update(spec.import_options())
    if spec.scale != 1.0:
        options["scale"] = spec.scale
    return StepNode(IMPORT_MODELS, IMPORT_MODELS, frozen_mapping(options), needs)


def _create_node(recipe: Recipe) -> StepNode:
    scene = recipe.scene
    options: dict[str, Any] = scene.to_api()
    if scene.fps_file is not None:
        options = {"fps_file": scene.fps_file}
    return StepNode(CREATE_SCENE, CREATE_SCENE, frozen_mapping(options))


def compile_graph(recipe: Recipe, models: Sequence[ModelInfo] = ()) -> StepGraph:
    """The step graph of one build of ``recipe`` importing ``models``.

    Raises :class:`~preform_pipeline.errors.StepGraphError` naming the steps when a step id
    repeats or clashes with a synthetic node, when ``after:`` names a step that does not
    exist, or when the dependencies form a cycle.
    """
    files = [str(m.path) for m in models]
    head = [_create_node(recipe)]
    head.append(_import_node(recipe, files, (CREATE_SCENE,)))

    known = {n.id for n in head}
    for step in recipe.steps:
        if step.id in known:
            what = "a synthetic step" if step.id in SYNTHETIC_KINDS else "another step"
            raise StepGraphError(
                f"{_where(step.position)}step id {step.id!r} is used by {what}; "
                "give this step a unique `id:`",
                steps=(step.id,),
            )
        known.add(step.id)

    nodes = list(head)
    for step in recipe.steps:
        for wanted in step.after:
            if wanted not in known:
                close = difflib.get_close_matches(wanted, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise StepGraphError(
                    f"{_where(step.position)}step {step.id!r} has `after: {wanted}`, but no "
                    f"step has the id {wanted!r}{hint}",
                    steps=(step.id, wanted),
                )
        needs = tuple(dict.fromkeys((nodes[-1].id, *step.after)))
        nodes.append(StepNode(step.id, step.kind, step.options, needs, step.position))

    return StepGraph(_ordered(nodes))


def _ordered(nodes: Sequence[StepNode]) -> tuple[StepNode, ...]:
    """``nodes`` in dependency order, ties broken by listing order; cycles raise."""
    rank = {n.id: i for i, n in enumerate(nodes)}
    by_id = {n.id: n for n in nodes}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node in nodes:
        sorter.add(node.id, *node.needs)
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        # graphlib lists the cycle so that each node must run before the next one, which is
        # how the message reads: "a -> b" = a before b.
        steps = tuple(dict.fromkeys(cycle))
        positions = [str(by_id[s].position) for s in steps if by_id[s].position is not None]
        where = f" ({', '.join(positions)})" if positions else ""
        raise StepGraphError(
            f"steps form a cycle: {' -> '.join(cycle)}{where}; steps run in recipe order, so "
            "`after:` may only name a step listed earlier",
            steps=steps,
        ) from None
    ordered: list[StepNode] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=rank.__getitem__)
        for node_id in ready:
            ordered.append(by_id[node_id])
            sorter.done(node_id)
    return tuple(ordered)
