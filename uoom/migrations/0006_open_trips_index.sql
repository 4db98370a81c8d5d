-- The optimizer's open-trips feed reads the joinable trips five times a second: a range of this
-- index (the trips whose pickup is ahead), then each one's rider by orders_trip. Without it the
-- planner scanned both tables whole, every order and trip ever made (3.4 ms a read at 4,000
-- orders, growing with them).
-- migrate:up
CREATE INDEX trips_open_pickup ON trips (pickup_by) WHERE riders = 1;

-- migrate:down
DROP INDEX trips_open_pickup;
