"""``python -m preform_pipeline.simulator.cloud``: a simulated Formlabs Dashboard (cli.py)."""

from __future__ import annotations

from preform_pipeline.simulator.cloud.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
