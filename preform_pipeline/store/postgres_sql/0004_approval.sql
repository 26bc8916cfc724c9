-- Version 4: builds held for approval (the recipe's print: {approval: required}), the
-- counterpart of the SQLite store's schema version 5: who approved or rejected one, when and
-- why. The state itself (awaiting_approval) needs no column: states are text.

ALTER TABLE builds
    ADD COLUMN approval JSONB;
