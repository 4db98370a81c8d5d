#!/usr/bin/env bash
# Runbook: write timeouts. Creating or updating orders answers 503 after UOOM_API_REQUEST_TIMEOUT_MS:
# the order transaction waits on PostgreSQL, or the read-model write-through on DynamoDB backs up.
#   RUNBOOK_MAX_P99_MS   P99 allowed for the order transaction, milliseconds (default 100)
. "$(dirname "$0")/lib.sh"
MAX_P99=${RUNBOOK_MAX_P99_MS:-100}

read_json api_url=urls.api timeout_ms=apiRequestTimeoutMs -- config
if ! read_json db=dependencies.postgres.up db_error=dependencies.postgres.error tx=latency.create.transaction.p99 \
    "create=latency.POST /api/orders.max" "patch=latency.PATCH /api/orders/{order_id}/status.max" \
    failed=api.readModel.writes.failed dropped=api.readModel.writes.dropped queued=api.readModel.pendingWrites \
    dynamo=dependencies.dynamodb.up -- metrics api; then
    found "the API is not answering at ${api_url}"
    next_step "start it: uoom serve (or uoom up)"
    finish
fi
slowest=$(awk -v a="$create" -v b="$patch" 'BEGIN { a = (a == "null") ? 0 : a; b = (b == "null") ? 0 : b; print (a > b) ? a : b }')
if awk -v s="$slowest" -v t="$timeout_ms" 'BEGIN { exit !(s + 0 >= 0.9 * t) }'; then
    found "writes took up to ${slowest} ms in the last 60 s: at the API's timeout of ${timeout_ms} ms (503)"
else
    ok "the slowest write took ${slowest} ms (timeout ${timeout_ms} ms)"
fi
if [ "$db" = "false" ]; then
    found "the API cannot reach PostgreSQL (${db_error})"
    doctor_row postgres
    if [ "$row_state" = "ok" ]; then
        next_step "PostgreSQL answers this machine (${row_detail}): check the network between the API and it, and its connection limit"
    else
        next_step "${row_fix:-uoom doctor} (PostgreSQL: ${row_detail})"
    fi
elif over "$tx" "$MAX_P99"; then
    found "the order transaction P99 is ${tx} ms (max ${MAX_P99}): PostgreSQL is slow to commit"
    next_step "look for locks and long transactions on PostgreSQL (pg_stat_activity); UOOM_DATABASE_POOL_SIZE"
else
    ok "PostgreSQL up for the API, order transaction P99 ${tx} ms"
fi
if over "$failed" 0 || over "$dropped" 0 || over "$queued" 100; then
    found "read-model writes: ${failed} failed, ${dropped} dropped, ${queued} queued (DynamoDB up: ${dynamo})"
    next_step "uoom doctor (the dynamodb row); the projector repairs the read model from the events"
fi
finish "writes finish well within ${timeout_ms} ms"
