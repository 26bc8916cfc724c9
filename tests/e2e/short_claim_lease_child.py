"""The real ``preform-pipeline`` command line with a short printer claim lease.

Run as ``python short_claim_lease_child.py SECONDS <command line>``. Everything runs as the
installed command does, except at one seam: a printer claim in the job store lasts ``SECONDS``
instead of 900 (``tracking.PRINTER_CLAIM_LEASE_S``, read when the claims are made), so a test
can let a claim outlive its lease within seconds instead of a quarter of an hour.
"""

from __future__ import annotations

import sys

from preform_pipeline.cli import main
from preform_pipeline.verify import tracking

if __name__ == "__main__":
    tracking.PRINTER_CLAIM_LEASE_S = float(sys.argv.pop(1))
    main()
