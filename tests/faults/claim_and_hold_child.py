"""A process that claims one printer in a job store and holds it until told to die.

Run as ``python claim_and_hold_child.py STORE PRINTER BUILD LEASE_S``: it claims ``PRINTER``
for ``BUILD`` through the product's own claims (``PrinterClaims``, lease ``LEASE_S``, renewed
while it runs, as a run's build is), prints ``HOLDER <holder>``, and waits for its standard
input to close. Then it ends at once (``os._exit``): nothing is released, as when a container
or a killed process goes away between its claim and its send.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.targets import PrinterCandidate
from preform_pipeline.verify.tracking import PrinterClaims

if __name__ == "__main__":
    store_path, printer, build, lease_s = sys.argv[1:5]
    claims = PrinterClaims(SqliteJobStore(Path(store_path)), lease_s=float(lease_s))
    claims.choose(build, lambda taken: PrinterCandidate(printer, ("FORM-4-0",), ("FLGPGR05",),
                                                        True))
    print(f"HOLDER {claims.holder}", flush=True)
    sys.stdin.read()
    os._exit(0)
