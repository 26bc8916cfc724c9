"""``python -m preform_pipeline`` (and the ``preform-pipeline`` script) is the command line.

Stop signals are caught first (:data:`~preform_pipeline.interrupts.EARLY_STOP`), before the
command line's imports: a SIGTERM a moment after the start is then a stop request like any
other, never the end of the program halfway through its start.
"""

from __future__ import annotations

from preform_pipeline.interrupts import EARLY_STOP

__all__ = ["main"]


def main() -> None:
    EARLY_STOP.install()
    from preform_pipeline.cli import main as command_line

    command_line()


if __name__ == "__main__":
    main()
