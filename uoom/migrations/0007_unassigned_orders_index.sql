-- Under dispatch_policy in-time the optimizer reads the orders without a channel every round
-- (every 30 s by default), and the API's sweeper as often: without this index, a walk of every
-- open order (orders_open) to find the few held ones. Partial: only orders with no channel are in
-- it, so it stays as small as the held orders, and an assignment takes its row out.
-- migrate:up
CREATE INDEX orders_unassigned ON orders (created_at) WHERE channel_id IS NULL;

-- migrate:down
DROP INDEX orders_unassigned;
