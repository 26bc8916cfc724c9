-- Version 10: an inbox claim may be nobody's (``node`` NULL): handed back by a live node that
-- no longer watches the claimed file's inbox (it restarted with that inbox removed from its
-- settings while it held jobs of it not yet batched). A live node's claims are never adopted,
-- so the node watching that inbox could not take those jobs over while it ran; a claim handed
-- back is adopted as a gone node's is (store/leases.py ``_ADOPTABLE``).

ALTER TABLE inbox_claims ALTER COLUMN node DROP NOT NULL;
