-- When the order's current channel was given to it (issue 14, re-optimization with a cut-off): a
-- move is allowed only before that channel's courier reaches the restaurant, i.e. while
-- now < assigned_at + the channel's pickup latency. NULL: assigned at creation (created_at);
-- a re-optimizer's move sets it (the new courier's latency counts from the move).
-- migrate:up
ALTER TABLE orders ADD COLUMN assigned_at timestamptz;

-- migrate:down
ALTER TABLE orders DROP COLUMN assigned_at;
