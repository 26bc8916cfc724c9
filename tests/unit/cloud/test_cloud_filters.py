"""The print filter value shared by the client and the fakes of the Dashboard."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from preform_pipeline.cloud import PrintFilter, WebApiClient
from preform_pipeline.simulator.cloud.filtering import BadFilter, filter_prints, print_filter
from preform_pipeline.simulator.cloud.testing import FakeWebApi, sample_print_run

NOON = datetime(2025, 3, 4, 12, 0, tzinfo=timezone.utc)


class TestPrintFilterValue:
    """A PrintFilter encodes itself as the API documents and decides which runs pass."""

    def test_an_empty_filter_sends_no_parameters_and_keeps_every_run(self) -> None:
        assert PrintFilter().params() == []
        assert PrintFilter().matches(sample_print_run(), None)

    def test_one_machine_type_is_held_as_a_tuple(self) -> None:
        assert PrintFilter(machine_type_id="FORM-4-0").machine_type_id == ("FORM-4-0",)

    def test_an_unknown_status_is_refused_when_the_filter_is_made(self) -> None:
        with pytest.raises(ValueError, match="unknown print status 'DONE'"):
            PrintFilter(status="DONE")

    def test_a_whole_day_is_sent_as_a_date(self) -> None:
        assert PrintFilter(date=date(2025, 3, 4)).params() == [("date", "2025-03-04")]

    def test_a_run_created_on_the_day_matches_the_day(self) -> None:
        run = sample_print_run(created=NOON)
        assert PrintFilter(date=date(2025, 3, 4)).matches(run, None)
        assert not PrintFilter(date=date(2025, 3, 5)).matches(run, None)

    def test_a_run_outside_the_bounds_does_not_match(self) -> None:
        run = sample_print_run(created=NOON)
        assert not PrintFilter(date__gt=NOON).matches(run, None)
        assert PrintFilter(date__lt=datetime(2025, 3, 5, tzinfo=timezone.utc)).matches(run, None)

    def test_the_machine_type_is_matched_against_any_of_those_named(self) -> None:
        wanted = PrintFilter(machine_type_id=["FORM-3-0", "FORM-4-0"])
        assert wanted.matches(sample_print_run(), "FORM-4-0")
        assert not wanted.matches(sample_print_run(), "FORM-3L-0")


class TestQueryToFilter:
    """The fakes read a query into the same PrintFilter the client sent."""

    def test_a_query_made_from_a_filter_reads_back_as_that_filter(self) -> None:
        sent = PrintFilter(date__gt=NOON, machine_type_id=("FORM-4-0",), name="crowns",
                           printer="P1", status="FINISHED", material="FLGPGR05")
        query: dict[str, list[str]] = {}
        for key, value in sent.params():
            query.setdefault(key, []).append(value)
        assert print_filter(query) == sent

    def test_a_bad_date_is_refused_with_the_field_named(self) -> None:
        with pytest.raises(BadFilter) as refused:
            filter_prints([], {"date__gt": ["yesterday"]}, lambda run: None)
        assert refused.value.body == {"date__gt": ["Enter a valid date/time."]}


class TestClientTakesTheValue:
    """The client sends a PrintFilter and its keyword form alike."""

    def test_a_filter_value_and_its_keywords_send_the_same_query(
        self, fake_api: FakeWebApi, client: WebApiClient
    ) -> None:
        fake_api.prints = [
            sample_print_run(guid="a", name="crowns-1"),
            sample_print_run(guid="b", name="bridges-1"),
        ]
        by_value = [r.name for r in client.iter_prints(PrintFilter(name="crowns"))]
        by_keyword = [r.name for r in client.iter_prints(name="crowns")]
        assert by_value == by_keyword == ["crowns-1"]
        first, second = fake_api.api_requests()
        assert first.url.params == second.url.params

    def test_a_value_and_keywords_together_are_refused(self, client: WebApiClient) -> None:
        with pytest.raises(TypeError, match="not both"):
            client.iter_prints(PrintFilter(name="a"), status="FINISHED")
