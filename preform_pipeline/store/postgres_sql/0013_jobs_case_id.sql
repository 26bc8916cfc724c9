-- Version 13: jobs found by their case without a table scan, the counterpart of the SQLite
-- store's schema version 11. The superseded-case rule (store/superseded.py) looks up every
-- case of a page of failed jobs (find_by_cases: case_id IN (...)), on every page of the
-- dashboard and every `jobs` listing that shows failed jobs, in some states (the state
-- in the index, as SQLite's).

CREATE INDEX jobs_case_id ON jobs (case_id, state);
