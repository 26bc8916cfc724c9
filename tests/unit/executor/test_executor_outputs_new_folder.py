"""Builds that claim their outputs at once in a folder none of them found (the first run of a
day with the shipped ``{date}/{build}.form`` template) all get a file."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.executor.outputs import claim_output

#: Builds claiming at once, and fresh folders to race for: enough rounds that a claim which
#: fails when another build made the folder first is seen (with that fault written in, from one
#: round in six to one in two failed on two busy cores, and each of 28 runs of this test failed).
CLAIMERS = 16
ROUNDS = 40


@pytest.fixture
def eager_switching() -> Iterator[None]:
    """Threads switch every 0.1 ms instead of every 5 ms, so the claims interleave between
    the failed open and the making of the folder, where two builds really meet."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(previous)


def _claim_together(target: Path) -> tuple[list[Path], list[BaseException]]:
    """Every claimer released at one barrier; the names claimed and the errors raised."""
    start = threading.Barrier(CLAIMERS)
    lock = threading.Lock()
    got: list[Path] = []
    errors: list[BaseException] = []

    def claim() -> None:
        start.wait(timeout=10)
        try:
            path = claim_output(target)
        except OSError as error:
            with lock:
                errors.append(error)
        else:
            with lock:
                got.append(path)

    threads = [threading.Thread(target=claim) for _ in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return got, errors


class TestClaimsInAFolderNotYetMade:
    """Claims racing to make the same missing folder each end with a file of their own."""

    @pytest.mark.usefixtures("eager_switching")
    def test_every_build_gets_its_own_file_when_all_of_them_make_the_folder(
        self, tmp_path: Path
    ) -> None:
        expected = {"PP.form"} | {f"PP-{n}.form" for n in range(2, CLAIMERS + 1)}
        for day in range(ROUNDS):
            target = tmp_path / f"day-{day}" / "PP.form"
            got, errors = _claim_together(target)
            assert errors == []
            assert {path.name for path in got} == expected
            assert sorted(p.name for p in target.parent.iterdir()) == sorted(expected)
