#!/usr/bin/env bash
# Runbook: a stale read model. Status reads (DynamoDB, through the API) show an older state than
# PostgreSQL: events do not reach the projector, or it cannot write them.
#   RUNBOOK_MAX_LAG_S           outbox lag allowed, seconds (default 5)
#   RUNBOOK_MAX_PROJECTOR_LAG   events on Kafka not yet in the read model (default 100)
. "$(dirname "$0")/lib.sh"
MAX_LAG=${RUNBOOK_MAX_LAG_S:-5}
MAX_PROJECTOR_LAG=${RUNBOOK_MAX_PROJECTOR_LAG:-100}

read_json relay_url=urls.relay table=dynamodbTable -- config
if ! read_json running=relay.projector.running lag=relay.projector.lag errors=relay.projector.errors \
    applied=relay.projector.applied stale=relay.projector.stale -- metrics relay; then
    found "the relay is not answering at ${relay_url}: the projector runs inside it, nothing updates the read model"
    next_step "start it: uoom relay (or uoom up); the projector catches up from Kafka, nothing is lost"
    finish
fi
if [ "$running" != "true" ]; then
    found "the relay at ${relay_url} runs without its read-model projector"
    next_step "restart the relay with its projector: UOOM_RELAY_PROJECTOR=true (the default), without --no-projector"
elif over "$errors" 0; then
    found "the projector failed ${errors} read-model write(s) (it retries them)"
    doctor_row dynamodb
    if [ "$row_state" != "ok" ]; then
        found "DynamoDB: ${row_detail}"
        next_step "${row_fix}"
    else
        next_step "DynamoDB answers now: watch uoom metrics relay (relay.projector.errors stops growing)"
    fi
elif over "$lag" "$MAX_PROJECTOR_LAG"; then
    found "the projector is ${lag} events behind Kafka (max ${MAX_PROJECTOR_LAG})"
    next_step "uoom metrics relay; a slow DynamoDB (throttling) or a burst: it catches up by itself"
else
    ok "projector running: ${applied} applied, ${stale} stale skipped, lag ${lag}, no error"
fi
if read_json outbox_lag=lagSeconds -- outbox status && over "$outbox_lag" "$MAX_LAG"; then
    found "events wait in the outbox for ${outbox_lag} s: they have not reached Kafka, so not the projector"
    next_step "runbooks/event-delays.sh"
fi
finish "the read model follows the events"
