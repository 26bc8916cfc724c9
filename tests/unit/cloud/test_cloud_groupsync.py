"""Planning and applying a fleet sync against the in-process fake Web API."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from preform_pipeline.cloud import WebApiClient
from preform_pipeline.cloud.groupsync import SyncStep, apply_plan, plan_sync
from preform_pipeline.errors import CloudError, ConfigError
from preform_pipeline.settings import FleetGroup, FleetMember, FleetSettings
from preform_pipeline.simulator.cloud.testing import FakeWebApi, sample_group, sample_printer

PRODUCTION = sample_group()["id"]
SERIALS = ("Form4-A", "Form4-B", "Form4-C")


@pytest.fixture
def account(fake_api: FakeWebApi) -> FakeWebApi:
    """One group, Production, holding three printers; its only member is the application."""
    fake_api.printers = [sample_printer(serial=s) for s in SERIALS]
    fake_api.groups = [sample_group(printers=list(SERIALS))]
    return fake_api


def fleet(*groups: FleetGroup, prune: bool = False) -> FleetSettings:
    return FleetSettings(groups=groups, prune=prune, declared=True)


def actions(steps: tuple[SyncStep, ...]) -> list[tuple[str, str]]:
    return [(s.action, s.group) for s in steps]


class TestPlanning:
    """A plan lists the changes in order and changes nothing itself."""

    def test_a_new_group_is_created_given_members_and_printers(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        wanted = fleet(FleetGroup("Dental", printers=("Form4-A",),
                                  members=(FleetMember("tech@lab.example", admin=True),),
                                  remote_print=False))

        plan = plan_sync(client, wanted)

        assert actions(plan.steps) == [
            ("create", "Dental"),
            ("set_remote_print", "Dental"),
            ("add_member", "Dental"),
            ("move_printers", "Dental"),
        ]
        assert plan.lines()[-2] == '> group "Dental": move in Form4-A (from "Production")'
        assert 'left alone (not declared; prune is off): "Production"' in plan.lines()[-1]
        assert [r.method for r in account.api_requests()] == ["GET", "GET"]

    def test_applying_then_planning_again_finds_no_difference(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        wanted = fleet(
            FleetGroup("Dental", printers=("Form4-A", "Form4-B"),
                       members=(FleetMember("tech@lab.example", admin=True),
                                FleetMember("nurse@lab.example")),
                       remote_print=False),
            FleetGroup("Production", printers=("Form4-C",)),
        )
        taken: list[SyncStep] = []

        with capture_logs() as logs:
            count = apply_plan(client, plan_sync(client, wanted), done=taken.append)

        assert count == len(taken) == 5
        assert [e["action"] for e in logs if e["event"] == "fleet_sync_step"] == [
            s.action for s in taken
        ]
        assert plan_sync(client, wanted).empty
        dental = next(g for g in account.groups if g["name"] == "Dental")
        assert dental["printers"] == ["Form4-A", "Form4-B"]
        assert dental["remote_print_enabled_override"] is False
        assert {m["email"]: m["is_admin"] for m in dental["memberships"]} == {
            "lab-bot@example.com": True, "tech@lab.example": True, "nurse@lab.example": False,
        }

    @pytest.mark.parametrize("admin", [True, None])
    def test_the_creator_listed_as_a_member_of_a_new_group_is_not_added_twice(
        self, client: WebApiClient, account: FakeWebApi, admin: bool | None
    ) -> None:
        # lab-bot is the fake's application user: the creator, and administrator, of every
        # group it creates.
        wanted = fleet(FleetGroup("Dental", members=(
            FleetMember("lab-bot@example.com", admin=admin),
            FleetMember("tech@lab.example", admin=True),
        )))
        apply_plan(client, plan_sync(client, wanted))

        dental = next(g for g in account.groups if g["name"] == "Dental")
        assert [m["email"] for m in dental["memberships"]] == [
            "lab-bot@example.com", "tech@lab.example"
        ]
        assert plan_sync(client, wanted).empty

    def test_a_creator_declared_as_no_administrator_of_a_new_group_is_demoted(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        wanted = fleet(FleetGroup("Dental", members=(
            FleetMember("tech@lab.example", admin=True),
            FleetMember("lab-bot@example.com", admin=False),
        )))

        apply_plan(client, plan_sync(client, wanted))

        dental = next(g for g in account.groups if g["name"] == "Dental")
        assert {m["email"]: m["is_admin"] for m in dental["memberships"]} == {
            "lab-bot@example.com": False, "tech@lab.example": True,
        }
        assert plan_sync(client, wanted).empty

    def test_a_declared_admin_right_is_changed_and_an_absent_one_left_alone(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        client.add_group_member(PRODUCTION, "tech@lab.example", is_admin=True)
        client.add_group_member(PRODUCTION, "nurse@lab.example", is_admin=True)
        wanted = fleet(FleetGroup("Production", printers=SERIALS,
                                  members=(FleetMember("tech@lab.example", admin=False),
                                           FleetMember("nurse@lab.example"))))

        plan = plan_sync(client, wanted)

        assert [(s.action, s.member, s.admin) for s in plan.steps] == [
            ("set_admin", "tech@lab.example", False)
        ]

    def test_unlisted_members_go_only_with_prune_members(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        client.add_group_member(PRODUCTION, "old@lab.example")
        kept = FleetGroup("Production", printers=SERIALS,
                          members=(FleetMember("lab-bot@example.com"),))
        pruned = FleetGroup("Production", printers=SERIALS,
                            members=(FleetMember("lab-bot@example.com"),), prune_members=True)

        assert plan_sync(client, fleet(kept)).empty
        plan = plan_sync(client, fleet(pruned))
        assert plan.lines() == ['- group "Production": remove member old@lab.example']

    def test_undeclared_groups_are_deleted_last_and_only_with_prune(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        wanted = fleet(FleetGroup("Everything", printers=SERIALS), prune=True)

        plan = plan_sync(client, wanted)

        assert actions(plan.steps) == [
            ("create", "Everything"), ("move_printers", "Everything"), ("delete", "Production"),
        ]
        apply_plan(client, plan)
        assert [g["name"] for g in account.groups] == ["Everything"]

    def test_printers_a_group_holds_but_the_settings_omit_are_noted_not_moved(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        plan = plan_sync(client, fleet(FleetGroup("Production", printers=("Form4-A",))))

        assert plan.empty
        assert "also holds Form4-B, Form4-C" in plan.notes[0]


class TestBadDeclarations:
    """What cannot be synced is said before anything changes."""

    def test_an_unknown_printer_is_an_error_with_did_you_mean(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        with pytest.raises(ConfigError, match="'Fomr4-B' is not on the Dashboard") as caught:
            plan_sync(client, fleet(FleetGroup("Dental", printers=("Fomr4-B",))))

        assert "did you mean 'Form4-B'" in (caught.value.hint or "")
        assert [r.method for r in account.api_requests()] == ["GET", "GET"]

    def test_two_dashboard_groups_with_the_declared_name_are_an_error(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        client.create_group("Production")

        with pytest.raises(ConfigError, match='2 groups named "Production"'):
            plan_sync(client, fleet(FleetGroup("Production")))

    def test_a_refused_step_stops_the_sync_saying_how_far_it_got(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        # Deleting Production is refused while it still holds the printers nobody moves.
        plan = plan_sync(client, fleet(FleetGroup("Dental"), prune=True))

        with pytest.raises(CloudError) as caught:
            apply_plan(client, plan)

        assert caught.value.status_code == 400
        assert (caught.value.hint or "").startswith(
            '1 of 2 changes was applied before this one (- delete group "Production")')
        assert {g["name"] for g in account.groups} == {"Production", "Dental"}

    def test_the_count_of_changes_applied_agrees_when_there_are_several(
        self, client: WebApiClient, account: FakeWebApi
    ) -> None:
        plan = plan_sync(client, fleet(FleetGroup("Dental"), FleetGroup("Lab"), prune=True))

        with pytest.raises(CloudError) as caught:
            apply_plan(client, plan)

        assert (caught.value.hint or "").startswith(
            '2 of 3 changes were applied before this one (- delete group "Production")')
        assert {g["name"] for g in account.groups} == {"Production", "Dental", "Lab"}


class TestGroupsReadWhole:
    """A group whose printers or members are not what the contract says stops the plan before
    anything changes: read as empty, fleet sync set out to add members a group had (session
    47's fuzzer)."""

    @pytest.mark.parametrize(("key", "value", "what"), [
        ("memberships", {}, "members"),
        ("memberships", "tech@lab.example", "members"),
        ("memberships", [{"user": 5, "email": "tech@lab.example"}], "members"),
        ("memberships", [None], "members"),
        ("printers", "Form4-A", "printer serials"),
        ("printers", [0, 1, 2], "printer serials"),
        ("printers", [None], "printer serials"),
    ], ids=["members-object", "members-string", "member-user-number", "member-null",
            "printers-string", "printers-numbers", "printer-null"])
    def test_a_group_of_another_shape_stops_the_plan(
        self, client: WebApiClient, account: FakeWebApi, key: str, value: object, what: str
    ) -> None:
        account.groups[0][key] = value
        wanted = fleet(FleetGroup("Production", printers=SERIALS,
                                  members=(FleetMember("tech@lab.example"),)))

        with pytest.raises(CloudError) as caught:
            plan_sync(client, wanted)

        assert (f'answered group "Production" with {key} that are not a list of {what}: fleet '
                "sync changes groups by what it reads, so it stops before changing anything"
                ) in caught.value.message
        assert {r.method for r in account.api_requests()} == {"GET"}
