"""``python -m preform_pipeline.simulator``: a simulated PreFormServer (see ``cli.py``)."""

from __future__ import annotations

from preform_pipeline.simulator.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
