"""``python -m preform_pipeline`` is the command line."""

from preform_pipeline.cli import main

__all__: list[str] = []

main()
