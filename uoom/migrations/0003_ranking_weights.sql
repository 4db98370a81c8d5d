-- The operator's ranking weights (`uoom channels weights set`, the dashboard's `w`). Redis keeps
-- nothing across a restart; without this copy a restarted Redis silently put the default weights
-- back. Redis holds the copy the optimizer and the API read; the optimizer restores it from here
-- when Redis comes back without it.
-- migrate:up
CREATE TABLE ranking_weights (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),  -- one row: the weights in force
  weights    jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE ranking_weights;
