#!/usr/bin/env bash
# Runbook: dead letters, e.g. after a Kafka outage. Events the relay could not publish after its
# retries (or one Kafka refuses outright) wait in the dead letters; nothing replays them by itself.
#   RUNBOOK_MAX_DEAD_LETTERS   open dead letters allowed (default 0)
. "$(dirname "$0")/lib.sh"
MAX_DEAD=${RUNBOOK_MAX_DEAD_LETTERS:-0}

if ! read_json open=deadLettersOpen total=deadLetters -- outbox status; then
    found "the outbox cannot be read (the line above says why)"
    next_step "uoom doctor --skip-daemons"
    finish
fi
if ! over "$open" "$MAX_DEAD"; then
    ok "${open} open dead letter(s) (max ${MAX_DEAD}); ${total} in all, the rest replayed"
    finish "no dead letter waits"
fi

found "${open} dead letter(s) not replayed (max ${MAX_DEAD})"
read_json newest=0.id error=0.lastError type=0.eventType died=0.failedAt -- dlq list --limit 1
echo "newest: ${newest} (${type}), died ${died}: ${error}"
"$UOOM" dlq list --limit 10 || true

doctor_row kafka
relay_ok=1
"$UOOM" relay --check 2>/dev/null || relay_ok=0

poison=0
case "$error" in
*TooLarge* | *too\ large* | *InvalidTimestamp* | *CorruptRecord* | *InvalidRecord*) poison=1 ;;
esac
kafka_down=0
[ "$row_state" = "down" ] && kafka_down=1
case "$row_detail" in "not answering"* | *missing*) kafka_down=1 ;; esac
if [ "$kafka_down" = 1 ]; then
    found "Kafka cannot take them now (${row_detail}): a replay would die again"
    next_step "${row_fix:-uoom doctor}; then run this runbook again"
elif [ "$poison" = 1 ]; then
    found "Kafka answers, yet refuses this event itself (${error}): a poison, replaying it unchanged fails again"
    next_step "uoom dlq show ${newest}; fix the topic's config or the producer, then uoom dlq replay ${newest}"
    next_step "or, when it must never be delivered: uoom dlq purge --before TIME (asks first, audited)"
elif [ "$relay_ok" = 0 ]; then
    found "the relay is not running: replayed events would wait in the outbox"
    next_step "start it: uoom relay (or uoom up); then run this runbook again"
else
    ok "Kafka answers and the relay runs: the dead letters can go back"
    next_step "uoom dlq replay --all --dry-run (what would move), then uoom dlq replay --all --rate 50/s"
fi
finish "no dead letter waits"
