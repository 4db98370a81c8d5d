#!/usr/bin/env bash
# Runbook: high P99 latency at the order API. Which routes are slow over the last 60 s, and where
# their time goes: the event loop (CPU), the optimizer call, the PostgreSQL transaction, the read
# model, garbage collection.
#   RUNBOOK_MAX_P99_MS        P99 allowed for any route or stage, milliseconds (default 100)
#   RUNBOOK_MAX_LOOP_LAG_MS   event-loop lag P99 allowed (default 20)
#   RUNBOOK_MIN_HIT_RATE      read-model hit rate expected (default 0.9)
. "$(dirname "$0")/lib.sh"
MAX_P99=${RUNBOOK_MAX_P99_MS:-100}
MAX_LOOP=${RUNBOOK_MAX_LOOP_LAG_MS:-20}

read_json api_url=urls.api -- config
slow=$("$UOOM" metrics api --max-p99 "$MAX_P99" 2>&1 >/dev/null)
case $? in
0) ok "every route and stage of the API at ${api_url} has a P99 under ${MAX_P99} ms" ;;
1)
    if [ -z "$slow" ] || [[ "$slow" == *"not answering"* ]] || [[ "$slow" == *"API key"* ]]; then
        found "the API cannot be read at ${api_url}: ${slow#error: }"
        next_step "start it: uoom serve (or uoom up); behind a key: UOOM_API_KEY=... $0"
        finish
    fi
    while IFS= read -r line; do found "$line"; done <<<"$slow"
    ;;
*) echo "$slow" >&2; exit 2 ;;
esac

read_json loop=latency.eventLoopLag.p99 assign=latency.create.assign.p99 tx=latency.create.transaction.p99 \
    gc=latency.gcPause.gen2.max db=dependencies.postgres.up hit=api.readModel.hitRate \
    breaker=api.assignment.breaker -- metrics api
if over "$loop" "$MAX_LOOP"; then
    found "event-loop lag P99 ${loop} ms (max ${MAX_LOOP}): every request waits behind CPU-bound work"
    next_step "more API processes (UOOM_API_WORKERS) or cores; uoom metrics api shows the GC pauses"
fi
if over "$assign" "$MAX_P99"; then
    found "choosing a channel (create.assign) P99 ${assign} ms: the optimizer call (breaker ${breaker})"
    next_step "runbooks/optimizer-fallback.sh"
fi
if over "$tx" "$MAX_P99"; then
    found "the order transaction (create.transaction) P99 ${tx} ms: PostgreSQL (up: ${db})"
    next_step "runbooks/write-timeouts.sh"
fi
if over "$gc" "$MAX_P99"; then
    found "a generation-2 GC pause of ${gc} ms"
    next_step "uoom metrics api (gcPause.*); a memory-heavy request or a leak: watch the process's RSS"
fi
if under "$hit" "${RUNBOOK_MIN_HIT_RATE:-0.9}"; then
    found "status reads answered from PostgreSQL, not the read model: hit rate ${hit}"
    next_step "runbooks/cache-misses.sh"
fi
finish "the API's P99 is under ${MAX_P99} ms"
