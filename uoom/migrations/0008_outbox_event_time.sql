-- An event's time is when it was written, not when its transaction began. The unit of work writes
-- a use case's events in the statement just before its COMMIT, so the write time is the commit's
-- (to a statement's length), and the relay's commitToAck and the outbox lag measure from there.
-- With now() (the transaction's start) a long transaction, such as an in-time round boarding
-- twenty orders on open trips one after the other, counted its own length as delivery delay.
-- Rows already written keep their time.
-- migrate:up
ALTER TABLE outbox_events ALTER COLUMN created_at SET DEFAULT clock_timestamp();

-- migrate:down
ALTER TABLE outbox_events ALTER COLUMN created_at SET DEFAULT now();
