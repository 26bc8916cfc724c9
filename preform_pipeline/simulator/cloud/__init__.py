"""A drop-in Formlabs Dashboard (Web API) simulator, served beside the PreFormServer simulator.

``python -m preform_pipeline.simulator.cloud --port N --fleet-dir DIR`` serves the Web API's
token, printers, prints, tanks, cartridges, events and groups endpoints from the fleet
directory the PreFormServer simulator prints into (see ``docs/dashboard-simulator.md``).
Importing this package loads nothing heavy: :mod:`.records` is shared with the in-process
``FakeWebApi`` of :mod:`preform_pipeline.simulator.cloud.fake`.
"""

__all__: list[str] = []
