-- Signed checkpoints (GET /audit/checkpoints): the chain head at a position, signed with
-- a key that is not in this database. Kept beside the log, not in it: a checkpoint is
-- an attestation about the log, never folded from it and never part of a rebuild.
-- Rows are only ever inserted. The note is the signed text (C2SP signed-note format);
-- the other columns repeat what it states, for listing.
CREATE TABLE audit_checkpoints (
    position     BIGINT NOT NULL,
    head_hash    TEXT NOT NULL,
    origin       TEXT NOT NULL,
    -- RFC 3339, seconds, UTC: the time line of the note.
    signed_at    TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    -- The signer's verifier key (name+id+key). Not trusted for verification: whoever can
    -- write here could change it; /audit/verify uses the keys the server was given.
    verifier_key TEXT NOT NULL,
    note         TEXT NOT NULL,
    PRIMARY KEY (position, key_id)
);
