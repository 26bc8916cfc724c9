"""Job store schemas as earlier versions of preform-pipeline wrote them, kept verbatim: the
migration code must keep upgrading stores created from exactly these, even if someone edits a
released migration. Each is the DDL alone (no ``user_version``): tests add their rows.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SQLITE_V10_SCHEMA", "SQLITE_V1_SCHEMA", "SQLITE_V8_SCHEMA"]

#: SQLite, schema version 1.
SQLITE_V1_SCHEMA: Final = """
CREATE TABLE builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_key TEXT NOT NULL UNIQUE, recipe TEXT NOT NULL,
    state TEXT NOT NULL, server TEXT, form_path TEXT, print_job_id TEXT, printer TEXT,
    job_name TEXT, verified_status TEXT, verified_message TEXT,
    reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    print_sent_at TEXT);
CREATE INDEX builds_state ON builds(state);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_key TEXT NOT NULL UNIQUE, recipe TEXT NOT NULL,
    source_path TEXT NOT NULL, original_name TEXT NOT NULL, content_hash TEXT, case_id TEXT,
    priority INTEGER NOT NULL DEFAULT 0, fields TEXT NOT NULL DEFAULT '{}', state TEXT NOT NULL,
    build_id INTEGER REFERENCES builds(id), reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    print_job_id TEXT, printer TEXT, verified_status TEXT, verified_message TEXT);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_updated_at ON jobs(updated_at);
CREATE INDEX jobs_source_path ON jobs(source_path);
CREATE INDEX jobs_build ON jobs(build_id);
CREATE TABLE build_jobs (
    build_id INTEGER NOT NULL REFERENCES builds(id), job_id INTEGER NOT NULL REFERENCES jobs(id),
    position INTEGER NOT NULL, PRIMARY KEY (build_id, job_id));
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER REFERENCES jobs(id),
    build_id INTEGER REFERENCES builds(id), from_state TEXT, to_state TEXT NOT NULL,
    at TEXT NOT NULL, reason TEXT NOT NULL,
    CHECK (job_id IS NOT NULL OR build_id IS NOT NULL));
CREATE INDEX transitions_job ON transitions(job_id, id);
CREATE INDEX transitions_build ON transitions(build_id, id);
"""

#: SQLite, schema version 8 (the last before send holders named their instance): version 1
#: and the steps 2 to 8 as they ran, a column added at a time.
SQLITE_V8_SCHEMA: Final = SQLITE_V1_SCHEMA + """
ALTER TABLE jobs ADD COLUMN verified_at TEXT;
ALTER TABLE builds ADD COLUMN verified_at TEXT;
CREATE INDEX jobs_content_hash ON jobs(content_hash);
ALTER TABLE builds ADD COLUMN send_holder TEXT;
ALTER TABLE builds ADD COLUMN print_target TEXT;
ALTER TABLE builds ADD COLUMN waiting_since TEXT;
ALTER TABLE builds ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN wait_notified_at TEXT;
ALTER TABLE builds ADD COLUMN approval TEXT;
CREATE TABLE notices (key TEXT PRIMARY KEY, about TEXT NOT NULL, said_at TEXT NOT NULL);
CREATE TABLE web_api_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, sent_at TEXT NOT NULL);
CREATE INDEX web_api_requests_account ON web_api_requests(account, sent_at);
CREATE INDEX web_api_requests_sent_at ON web_api_requests(sent_at);
CREATE TABLE web_api_holds (account TEXT PRIMARY KEY, until TEXT NOT NULL);
CREATE TABLE printer_claims (
    printer TEXT PRIMARY KEY, holder TEXT NOT NULL, build TEXT NOT NULL, until TEXT NOT NULL);
"""

#: SQLite, schema version 10 (the last before jobs were indexed by case): version 8, step 9
#: (no statement: holders name their instance inside their JSON) and step 10.
SQLITE_V10_SCHEMA: Final = SQLITE_V8_SCHEMA + """
ALTER TABLE builds ADD COLUMN full_disk TEXT;
"""
