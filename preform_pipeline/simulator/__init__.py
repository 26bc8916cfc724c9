"""A drop-in PreFormServer (and, later, Dashboard) simulator.

``python -m preform_pipeline.simulator --port N`` starts like PreFormServer, prints
``READY FOR INPUT`` and serves the Local API contract from real geometry.
"""

__all__: list[str] = []
