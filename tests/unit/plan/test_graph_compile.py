"""The step graph: synthetic head, recipe order, `after:` edges, errors and renderings."""

from __future__ import annotations

import itertools
import json

import pytest

from preform_pipeline.errors import StepGraphError
from preform_pipeline.plan.graph import (
    CREATE_SCENE,
    IMPORT_MODELS,
    SCAN_TO_MODEL,
    StepGraph,
    compile_graph,
)
from tests.unit.plan.planning_factories import (
    FULL_SLA_STEPS,
    make_model,
    make_recipe,
    make_step,
)


class TestOrder:
    """Nodes run create_scene, import, then the recipe's steps in recipe order."""

    def test_a_full_recipe_runs_in_recipe_order_after_the_synthetic_head(self) -> None:
        graph = compile_graph(make_recipe(steps=FULL_SLA_STEPS))
        assert [n.id for n in graph.order()] == [CREATE_SCENE, IMPORT_MODELS, *FULL_SLA_STEPS]

    def test_every_node_needs_the_one_before_it(self) -> None:
        graph = compile_graph(make_recipe(steps=FULL_SLA_STEPS))
        nodes = graph.order()
        assert nodes[0].needs == ()
        for before, node in itertools.pairwise(nodes):
            assert node.needs == (before.id,)

    def test_scan_to_model_replaces_the_plain_import(self) -> None:
        recipe = make_recipe(scan_to_model={"units": "MILLIMETERS"}, steps=("auto_orient",))
        graph = compile_graph(recipe)
        assert graph.ids == (CREATE_SCENE, SCAN_TO_MODEL, "auto_orient")
        assert graph[SCAN_TO_MODEL].options["units"] == "MILLIMETERS"
        assert graph[SCAN_TO_MODEL].synthetic

    def test_the_import_node_lists_the_build_files_and_import_options(self) -> None:
        models = [make_model("a"), make_model("b")]
        graph = compile_graph(make_recipe(scale=2.0), models)
        options = graph[IMPORT_MODELS].options
        assert list(options["files"]) == [str(m.path) for m in models]
        assert options["units"] == "MILLIMETERS"
        assert options["scale"] == 2.0

    def test_create_scene_carries_the_scene_settings(self) -> None:
        graph = compile_graph(make_recipe(machine="FORM-4L-0"))
        assert graph[CREATE_SCENE].options["machine_type"] == "FORM-4L-0"

    def test_step_options_and_positions_are_kept(self) -> None:
        step = make_step("auto_support", options={"density": 1.2}, line=7)
        graph = compile_graph(make_recipe(steps=(step,)))
        node = graph["auto_support"]
        assert node.options["density"] == 1.2
        assert node.position is not None and node.position.line == 7
        assert not node.synthetic

    def test_an_after_naming_an_earlier_step_adds_an_edge_but_keeps_the_order(self) -> None:
        steps = (
            make_step("auto_orient"),
            make_step("auto_support"),
            make_step("auto_layout", after=("auto_orient",)),
        )
        graph = compile_graph(make_recipe(steps=steps))
        assert graph["auto_layout"].needs == ("auto_support", "auto_orient")
        assert ("auto_orient", "auto_layout") in graph.edges()
        assert graph.ids[-1] == "auto_layout"

    def test_an_after_repeating_the_previous_step_is_not_duplicated(self) -> None:
        steps = (make_step("auto_orient"), make_step("auto_support", after=("auto_orient",)))
        graph = compile_graph(make_recipe(steps=steps))
        assert graph["auto_support"].needs == ("auto_orient",)

    def test_an_after_may_name_a_synthetic_node(self) -> None:
        steps = (make_step("auto_orient"), make_step("label", after=(IMPORT_MODELS,)))
        graph = compile_graph(make_recipe(steps=steps))
        assert IMPORT_MODELS in graph["label"].needs


class TestSorter:
    """The prepared sorter hands out one ready node at a time, in graph order."""

    def test_driving_the_sorter_visits_every_node_in_order(self) -> None:
        graph = compile_graph(make_recipe(steps=FULL_SLA_STEPS))
        sorter = graph.sorter()
        seen: list[str] = []
        while sorter.is_active():
            ready = sorter.get_ready()
            assert len(ready) == 1, "one operation at a time per scene"
            seen.extend(ready)
            sorter.done(*ready)
        assert tuple(seen) == graph.ids

    def test_each_call_returns_a_fresh_sorter(self) -> None:
        graph = compile_graph(make_recipe())
        first = graph.sorter()
        first.done(*first.get_ready())
        assert graph.sorter().get_ready() == (CREATE_SCENE,)


class TestErrors:
    """Broken dependencies raise StepGraphError naming the steps involved."""

    @pytest.mark.parametrize(
        ("steps", "named"),
        [
            (
                (make_step("auto_orient", after=("auto_support",)), make_step("auto_support")),
                {"auto_orient", "auto_support"},
            ),
            (
                (
                    make_step("auto_orient", after=("auto_layout",)),
                    make_step("auto_support"),
                    make_step("auto_layout"),
                ),
                {"auto_orient", "auto_support", "auto_layout"},
            ),
            ((make_step("auto_orient", after=("auto_orient",)),), {"auto_orient"}),
        ],
        ids=["two-steps", "three-steps", "self"],
    )
    def test_a_cycle_through_after_names_every_step_in_it(
        self, steps: tuple[object, ...], named: set[str]
    ) -> None:
        with pytest.raises(StepGraphError) as caught:
            compile_graph(make_recipe(steps=steps))  # type: ignore[arg-type]
        assert set(caught.value.steps) == named
        for step in named:
            assert step in str(caught.value)
        assert "cycle" in str(caught.value)

    def test_a_cycle_message_reads_in_running_order(self) -> None:
        steps = (make_step("auto_orient", after=("auto_support",)), make_step("auto_support"))
        with pytest.raises(StepGraphError) as caught:
            compile_graph(make_recipe(steps=steps))
        text = str(caught.value)
        assert (
            "auto_orient -> auto_support -> auto_orient" in text
            or "auto_support -> auto_orient -> auto_support" in text
        )

    def test_a_missing_after_id_is_named_with_its_step_and_a_suggestion(self) -> None:
        steps = (
            make_step("auto_orient"),
            make_step("auto_support", after=("auto_orinet",), line=9),
        )
        with pytest.raises(StepGraphError) as caught:
            compile_graph(make_recipe(steps=steps))
        text = str(caught.value)
        assert "'auto_support'" in text and "'auto_orinet'" in text
        assert "did you mean 'auto_orient'" in text
        assert "recipe.yaml:9:5" in text
        assert caught.value.steps == ("auto_support", "auto_orinet")

    @pytest.mark.parametrize("clash", ["create_scene", "import_models", "auto_orient"])
    def test_a_step_id_clashing_with_another_node_is_refused(self, clash: str) -> None:
        steps = (make_step("auto_orient"), make_step("auto_support", id=clash))
        with pytest.raises(StepGraphError) as caught:
            compile_graph(make_recipe(steps=steps))
        assert clash in str(caught.value)


class TestRendering:
    """Text, Mermaid and JSON renderings show every node and edge."""

    @pytest.fixture
    def graph(self) -> StepGraph:
        steps = (
            make_step("auto_orient"),
            make_step("auto_support", options={"density": 1.0}),
            make_step("label", id='label "case"', after=("auto_orient",)),
        )
        return compile_graph(make_recipe(steps=steps), [make_model("a")])

    def test_mermaid_declares_each_node_once_then_each_edge(self, graph: StepGraph) -> None:
        lines = graph.to_mermaid().splitlines()
        assert lines[0] == "flowchart TD"
        declared = [line for line in lines[1:] if "[" in line]
        arrows = [line for line in lines[1:] if "-->" in line]
        assert len(declared) == len(graph)
        assert len(arrows) == len(graph.edges())
        assert len(lines) == 1 + len(graph) + len(graph.edges())
        assert '    n4["label #quot;case#quot; (label)"]' in lines
        assert "    n2 --> n4" in arrows

    def test_json_lists_nodes_in_order_with_needs_and_the_edges(self, graph: StepGraph) -> None:
        data = json.loads(graph.to_json())
        assert [n["id"] for n in data["nodes"]] == list(graph.ids)
        assert set(data["nodes"][0]) == {"id", "kind", "options", "needs"}
        assert data["nodes"][3]["options"] == {"density": 1.0}
        assert data["nodes"][1]["options"]["files"] == ["models/a.stl"]
        assert ["auto_orient", 'label "case"'] in data["edges"]
        assert len(data["edges"]) == len(graph.edges())

    def test_text_numbers_every_node_and_shows_dependencies(self, graph: StepGraph) -> None:
        lines = graph.to_text().splitlines()
        assert len(lines) == len(graph)
        assert lines[0].startswith(" 1. create_scene")
        assert "after auto_support, auto_orient" in lines[4]
        assert "[label]" in lines[4]
        assert "density=1.0" in lines[3]
