#!/usr/bin/env bash
# Runbook: cache misses. Status reads should be answered by the API's in-process cache, DAX or
# DynamoDB (the read model); each one PostgreSQL answers instead is a miss that loads the write side.
#   RUNBOOK_MIN_HIT_RATE   read-model hit rate expected (default 0.9)
. "$(dirname "$0")/lib.sh"
MIN_HIT=${RUNBOOK_MIN_HIT_RATE:-0.9}

read_json api_url=urls.api table=dynamodbTable -- config
if ! read_json hit=api.readModel.hitRate sources=api.readModel.sources failed=api.readModel.writes.failed \
    dropped=api.readModel.writes.dropped dynamo=dependencies.dynamodb.up dynamo_error=dependencies.dynamodb.error \
    dax=dependencies.dax.up -- metrics api; then
    found "the API is not answering at ${api_url}: no read to look at"
    next_step "start it: uoom serve (or uoom up)"
    finish
fi
if [ "$hit" = "null" ]; then
    ok "no status read yet since the API started: nothing to measure"
    finish "no status read has missed"
fi
if ! under "$hit" "$MIN_HIT"; then
    ok "hit rate ${hit} (min ${MIN_HIT}); reads by source: ${sources}"
    finish "status reads are answered by the read model"
fi

found "read-model hit rate ${hit} is under ${MIN_HIT}: reads by source ${sources}"
doctor_row dynamodb
if [ "$row_state" != "ok" ]; then
    found "DynamoDB: ${row_detail}"
    next_step "${row_fix}"
elif [ "$dynamo" = "false" ]; then
    found "the API cannot reach DynamoDB (${dynamo_error})"
    next_step "check DYNAMODB_ENDPOINT for the API's processes; uoom doctor"
elif [ "$dax" = "false" ]; then
    found "the API cannot reach DAX"
    next_step "uoom dax health"
elif over "$failed" 0 || over "$dropped" 0; then
    found "read-model writes failing: ${failed} failed, ${dropped} dropped"
    next_step "runbooks/write-timeouts.sh"
else
    found "DynamoDB answers, yet lacks the orders read: the projector has not written them"
    next_step "runbooks/stale-read-model.sh"
fi
finish "status reads are answered by the read model"
