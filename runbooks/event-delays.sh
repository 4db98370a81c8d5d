#!/usr/bin/env bash
# Runbook: event delays. Orders change but consumers (the read model, the optimizer's channel load,
# the API's status cache) hear of it late: events wait in the outbox, or Kafka does not take them.
#   RUNBOOK_MAX_LAG_S           outbox lag allowed, seconds (default 5)
#   RUNBOOK_MAX_PROJECTOR_LAG   events on Kafka not yet in the read model (default 100)
. "$(dirname "$0")/lib.sh"
MAX_LAG=${RUNBOOK_MAX_LAG_S:-5}
MAX_PROJECTOR_LAG=${RUNBOOK_MAX_PROJECTOR_LAG:-100}

if ! read_json pending=pending lag=lagSeconds retrying=retrying -- outbox status; then
    found "the outbox cannot be read (the line above says why)"
    next_step "uoom doctor --skip-daemons"
    finish
fi
read_json relay_url=urls.relay -- config
relay_up=1
read_json status=status problems=problems stalled=relay.kafka.stalledSeconds \
    projector=relay.projector.running projector_lag=relay.projector.lag -- metrics relay 2>/dev/null || relay_up=0

if over "$lag" "$MAX_LAG"; then
    found "outbox lag ${lag} s is over ${MAX_LAG} s: ${pending} event(s) not yet on Kafka (${retrying} retrying)"
else
    ok "outbox lag ${lag} s (max ${MAX_LAG} s), ${pending} pending"
fi

if [ "$relay_up" = 0 ]; then
    found "the relay is not answering at ${relay_url}: nothing publishes the outbox"
    next_step "start it: uoom relay (or uoom up); the events wait in the outbox, none is lost"
elif [ "$stalled" != "null" ]; then
    found "Kafka has not acknowledged the relay's sends for ${stalled} s"
    next_step "uoom doctor --skip-daemons (the kafka row); uoom stack status kafka on the local stack"
elif [ "$status" != "ok" ]; then
    found "the relay is ${status}: ${problems}"
    next_step "fix what it names, then: uoom relay --check"
elif over "$lag" "$MAX_LAG"; then
    found "the relay runs and Kafka answers, yet the backlog stays: the relay is behind"
    next_step "uoom metrics relay (commitToAck P99, batches); run another relay, or raise UOOM_RELAY_CONCURRENCY"
elif [ "$projector" = "true" ] && over "$projector_lag" "$MAX_PROJECTOR_LAG"; then
    found "the read-model projector is ${projector_lag} events behind Kafka (max ${MAX_PROJECTOR_LAG})"
    next_step "runbooks/stale-read-model.sh"
else
    ok "relay at ${relay_url}: ${status}, Kafka acknowledging, projector running: ${projector} (lag ${projector_lag})"
fi
finish "events leave the outbox within ${MAX_LAG} s"
