"""One module per command line command; see :mod:`preform_pipeline.cli`."""

__all__: list[str] = []
