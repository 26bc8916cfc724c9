"""The one rule of what a run keeps a record for: a run that did nothing leaves nothing."""

from __future__ import annotations

import pytest

from preform_pipeline.commands._run_deeds import Deed, RunDeeds


class TestNothing:
    """A run did nothing until one deed is counted, of any kind."""

    def test_a_run_that_counted_nothing_did_nothing(self) -> None:
        assert RunDeeds().nothing

    def test_counting_none_of_a_deed_is_still_nothing(self) -> None:
        # A sweep that removed no file, a plan of no builds: counted as 0 on every run.
        deeds = RunDeeds()
        for deed in Deed:
            deeds.add(deed, 0)
        assert deeds.nothing and deeds.counts() == {}

    @pytest.mark.parametrize("deed", list(Deed))
    def test_any_one_deed_is_something(self, deed: Deed) -> None:
        deeds = RunDeeds()
        deeds.add(deed)
        assert not deeds.nothing
        assert deeds.counts() == {deed: 1}

    def test_counts_add_up(self) -> None:
        deeds = RunDeeds()
        deeds.add(Deed.REMOVED, 2)
        deeds.add(Deed.REMOVED, 3)
        assert deeds.counts() == {Deed.REMOVED: 5}

    def test_a_negative_count_is_refused(self) -> None:
        with pytest.raises(ValueError, match="-1 removed"):
            RunDeeds().add(Deed.REMOVED, -1)


class TestSettle:
    """A deed counted as begun is counted again once what it did is known."""

    def test_a_send_pass_that_sent_nothing_leaves_the_run_having_done_nothing(self) -> None:
        deeds = RunDeeds()
        deeds.add(Deed.SENT)  # begun: a send may go out
        deeds.settle(Deed.SENT, 0)  # every build still waits
        assert deeds.nothing

    def test_a_send_pass_that_sent_is_counted_as_what_it_sent(self) -> None:
        deeds = RunDeeds()
        deeds.add(Deed.SENT)
        deeds.settle(Deed.SENT, 2)
        assert deeds.counts() == {Deed.SENT: 2}

    def test_settling_one_deed_leaves_the_others(self) -> None:
        deeds = RunDeeds()
        deeds.add(Deed.PREPARED, 1)
        deeds.settle(Deed.SENT, 0)
        assert deeds.counts() == {Deed.PREPARED: 1}
