-- `uoom dlq`: an audit of what operators did to the dead letters (replay, purge), and when a
-- replayed event went back on the delivery path (so the outbox lag and the relay's latency count
-- from the replay, not from the event's original time, which the envelope keeps).
-- migrate:up
CREATE TABLE operator_audit (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  action      text NOT NULL,              -- dlq.replay, dlq.purge
  os_user     text NOT NULL,
  host        text NOT NULL,
  filter      jsonb NOT NULL DEFAULT '{}',  -- what the operator selected, as given
  count       integer NOT NULL DEFAULT 0,   -- rows affected, kept exact row by row
  event_ids   uuid[] NOT NULL DEFAULT '{}'
);
CREATE INDEX operator_audit_action_at ON operator_audit (action, at DESC);

ALTER TABLE outbox_events ADD COLUMN replayed_at timestamptz;
CREATE INDEX dead_letters_failed_at ON dead_letters (failed_at);

-- migrate:down
DROP INDEX dead_letters_failed_at;
ALTER TABLE outbox_events DROP COLUMN replayed_at;
DROP TABLE operator_audit;
