-- The seed's write side: orders and their outbox, plus what the product needs beside them.
-- migrate:up
CREATE TYPE order_status_enum AS ENUM (
  'PENDING', 'CONFIRMED', 'PREPARING', 'READY_FOR_PICKUP', 'PICKED_UP', 'DELIVERED',
  'CANCELLED', 'FAILED'
);

CREATE TABLE restaurants (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
  longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
  prep_minutes integer NOT NULL DEFAULT 15 CHECK (prep_minutes >= 0),
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channels (
  id                 text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name               text NOT NULL,
  kind               text NOT NULL CHECK (kind IN ('own_fleet', 'partner', 'restaurant')),
  capacity           integer NOT NULL CHECK (capacity >= 0),
  base_cost          numeric(10,2) NOT NULL CHECK (base_cost >= 0),
  cost_per_km        numeric(10,3) NOT NULL CHECK (cost_per_km >= 0),
  speed_kmh          numeric(6,2) NOT NULL CHECK (speed_kmh > 0),
  pickup_latency_min numeric(6,2) NOT NULL CHECK (pickup_latency_min >= 0),
  radius_km          numeric(6,2) NOT NULL CHECK (radius_km > 0),
  quality            numeric(4,3) NOT NULL CHECK (quality BETWEEN 0 AND 1),
  enabled            boolean NOT NULL DEFAULT true,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
  id                      uuid PRIMARY KEY,
  customer_id             uuid NOT NULL,
  restaurant_id           uuid NOT NULL REFERENCES restaurants (id),
  status                  order_status_enum NOT NULL DEFAULT 'PENDING',
  items                   jsonb NOT NULL,
  delivery_location       jsonb NOT NULL,
  total                   numeric(10,2) NOT NULL CHECK (total >= 0),
  estimated_delivery_time timestamptz,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  -- optimistic concurrency: PATCH sends it as If-Match, the read model keeps the newest
  version                 integer NOT NULL DEFAULT 1,
  channel_id              text REFERENCES channels (id),
  delivery_cost           numeric(10,2),
  eta_seconds             integer,
  assignment_source       text,
  notes                   text
);
CREATE INDEX orders_customer_created ON orders (customer_id, created_at DESC);
-- the optimizer's rolling horizon: assigned and not yet picked up
CREATE INDEX orders_open ON orders (status) WHERE status IN ('PENDING', 'CONFIRMED', 'PREPARING', 'READY_FOR_PICKUP');

CREATE TABLE outbox_events (
  id              uuid PRIMARY KEY,
  -- commit order within the table: per aggregate, events are published in this order
  position        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  type            varchar(100) NOT NULL,
  aggregate_id    uuid NOT NULL,
  aggregate_type  varchar(50) NOT NULL,
  aggregate_version integer NOT NULL DEFAULT 1,
  data            jsonb NOT NULL,
  processed       boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  error_history   jsonb NOT NULL DEFAULT '[]',
  published_at    timestamptz
);
CREATE INDEX outbox_pending ON outbox_events (position) WHERE NOT processed;
CREATE INDEX outbox_pending_aggregate ON outbox_events (aggregate_id, position) WHERE NOT processed;
CREATE INDEX outbox_processed_at ON outbox_events (published_at) WHERE processed;

-- Wake the relay at commit instead of at its next poll; one notify per statement is enough.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('uoom_outbox', '');
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

CREATE TABLE dead_letters (
  id              uuid PRIMARY KEY,
  event_type      varchar(100) NOT NULL,
  aggregate_id    uuid NOT NULL,
  aggregate_type  varchar(50) NOT NULL,
  aggregate_version integer NOT NULL,
  data            jsonb NOT NULL,
  attempts        integer NOT NULL,
  last_error      text NOT NULL,
  error_history   jsonb NOT NULL DEFAULT '[]',
  created_at      timestamptz NOT NULL,
  failed_at       timestamptz NOT NULL DEFAULT now(),
  replayed_at     timestamptz,
  replay_count    integer NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  name         text NOT NULL UNIQUE,
  -- sha256 of a 256-bit random key: a slow hash adds nothing against brute force at that entropy
  key_hash     text NOT NULL UNIQUE,
  prefix       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz,
  last_used_at timestamptz
);

CREATE TABLE idempotency_keys (
  api_key_id    uuid NOT NULL REFERENCES api_keys (id),
  key           text NOT NULL,
  request_hash  text NOT NULL,
  status_code   integer NOT NULL,
  response      jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (api_key_id, key)
);

-- migrate:down
DROP TABLE idempotency_keys;
DROP TABLE api_keys;
DROP TABLE dead_letters;
DROP TRIGGER outbox_events_notify ON outbox_events;
DROP FUNCTION outbox_notify();
DROP TABLE outbox_events;
DROP TABLE orders;
DROP TABLE channels;
DROP TABLE restaurants;
DROP TYPE order_status_enum;
