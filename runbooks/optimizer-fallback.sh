#!/usr/bin/env bash
# Runbook: the optimizer keeps falling back. Orders get their channel from the Redis ranking or the
# greedy fallback instead of the CP-SAT optimizer: dearer or slower deliveries, unbalanced channels.
#   RUNBOOK_MAX_FALLBACK_RATE   share of orders not assigned by the optimizer allowed (default 0.05)
. "$(dirname "$0")/lib.sh"
MAX_RATE=${RUNBOOK_MAX_FALLBACK_RATE:-0.05}

read_json api_url=urls.api optimizer_url=urls.optimizer timeout_ms=optimizerTimeoutMs -- config
if ! read_json rate=api.assignment.fallbackRate breaker=api.assignment.breaker sources=api.assignment.sources \
    -- metrics api; then
    found "the API is not answering at ${api_url}: no assignment to look at"
    next_step "start it: uoom serve (or uoom up)"
    finish
fi
optimizer_up=1
read_json status=status problems=problems own_rate=optimizer.fallbackRate solve_p99=latency.solve.p99 \
    -- metrics optimizer 2>/dev/null || optimizer_up=0

if over "$rate" "$MAX_RATE"; then
    found "$(percent "$rate") of the API's orders were not assigned by the optimizer (max $(percent "$MAX_RATE")); by source: ${sources}"
else
    ok "fallback rate ${rate} (max ${MAX_RATE}); by source: ${sources}"
fi
if [ "$optimizer_up" = 0 ]; then
    found "the optimizer is not answering at ${optimizer_url}"
    next_step "start it: uoom optimizer (or uoom up); the API's breaker lets it back in within UOOM_BREAKER_RECOVERY_SECONDS"
elif [ "$breaker" != "closed" ] && [ "$breaker" != "null" ]; then
    found "the API's circuit breaker to the optimizer is ${breaker}: its calls failed or timed out in a row"
    if over "$solve_p99" "$timeout_ms"; then
        found "solve P99 ${solve_p99} ms is over the API's timeout of ${timeout_ms} ms"
        next_step "raise UOOM_OPTIMIZER_TIMEOUT_MS or lower UOOM_OPTIMIZER_DEADLINE_MS"
    else
        next_step "uoom metrics optimizer (status, problems); uoom optimizer --check"
    fi
elif [ "$status" != "ok" ]; then
    found "the optimizer is ${status}: ${problems}"
    next_step "fix what it names, then: uoom optimizer --check"
elif over "$own_rate" "$MAX_RATE"; then
    found "the optimizer itself leaves $(percent "$own_rate") of its orders to the fallback: no channel fits them"
    next_step "uoom channels list (capacity, radius, enabled); uoom channels rank"
elif over "$rate" "$MAX_RATE"; then
    ok "the optimizer answers now at ${optimizer_url} (solve P99 ${solve_p99} ms): the fallbacks are older than its recovery"
else
    ok "optimizer at ${optimizer_url}: ${status}, solve P99 ${solve_p99} ms, its own fallback rate ${own_rate}"
fi
finish "orders are assigned by the optimizer"
