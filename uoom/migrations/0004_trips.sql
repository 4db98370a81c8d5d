-- Trips (issue 14): a courier's trip on a bundling channel carries one or two orders from one
-- restaurant and holds one slot. The optimizer names the trip; the order's transaction inserts it
-- (the first rider) or bumps it to two riders (a join) while it is open and before its pickup.
-- migrate:up
-- a courier's trip on a bundling channel: one or two orders from one restaurant, one slot
CREATE TABLE trips (
  id            uuid PRIMARY KEY,
  channel_id    text NOT NULL REFERENCES channels (id),
  restaurant_id uuid NOT NULL REFERENCES restaurants (id),
  riders        smallint NOT NULL CHECK (riders BETWEEN 1 AND 2),
  pickup_by     timestamptz NOT NULL,   -- planned pickup: no join and no move at or after it
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trips_joinable ON trips (restaurant_id, pickup_by) WHERE riders = 1;
ALTER TABLE orders ADD COLUMN trip_id uuid REFERENCES trips (id), ADD COLUMN co_rider_id uuid;
-- a trip's orders: the join locks its first rider, the optimizer lists open trips with their riders
CREATE INDEX orders_trip ON orders (trip_id) WHERE trip_id IS NOT NULL;
ALTER TABLE channels ADD COLUMN bundles boolean NOT NULL DEFAULT false;

-- migrate:down
DROP INDEX orders_trip;
ALTER TABLE channels DROP COLUMN bundles;
ALTER TABLE orders DROP COLUMN co_rider_id;
ALTER TABLE orders DROP COLUMN trip_id;
DROP TABLE trips;
