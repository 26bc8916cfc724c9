-- Version 11: the folder whose disk was full when a build failed, the counterpart of the
-- SQLite store's schema version 10. The runner tells a full disk by the refused write's errno
-- (or the output folder's disk being full when the server's save was refused); kept with the
-- failure, a note written after a restart, when the run's outcome is gone, still says to free
-- space there rather than to fix the model. NULL: the build did not fail for want of room.

ALTER TABLE builds
    ADD COLUMN full_disk TEXT;
