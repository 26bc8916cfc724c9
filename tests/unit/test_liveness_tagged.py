"""A claim's holder names its process, then a tag; read back in one way by the store (a dead
holder's printer is free), by the farm tests (which node holds a claim) and by the kill soak
(no claim of a daemon's last life is left)."""

from __future__ import annotations

import os

from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.verify.tracking import PrinterClaims


class TestTaggedHolder:
    def test_a_printer_claims_holder_names_this_process(self) -> None:
        holder = PrinterClaims().holder

        process = ProcessIdentity.from_tagged(holder)

        assert process is not None
        assert process.pid == os.getpid()
        assert process.matches(ProcessIdentity.current())

    def test_two_claimers_of_one_process_have_other_holders_naming_it(self) -> None:
        first, second = PrinterClaims().holder, PrinterClaims().holder

        assert first != second
        assert ProcessIdentity.from_tagged(first) == ProcessIdentity.from_tagged(second)

    def test_a_holder_of_an_earlier_version_names_no_process(self) -> None:
        earlier = f"{ProcessIdentity.current().host}:{os.getpid()}:1765000000.000:a1b2c3d4"

        assert ProcessIdentity.from_tagged(earlier) is None
