"""`uoom dlq list|show|replay|purge|history`: the dead letters, back on the delivery path or gone,
audited. Filtered, dry-run, rate-bounded, audited, never automatic (docs/cli.md, "uoom dlq")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from commands._confirm import YES_OPTION, confirm
from commands._context import current
from commands._output import EXIT_CODES, JSON_OPTION, ExitCode, command, emit_json, err, fail, group, render

if TYPE_CHECKING:
    from uoom.services.dead_letters import ReplayReport, Selection
    from uoom.stores.outbox import DeadLetter

app = group(f"Dead letters: list, show, replay (rate-bounded, dry-run), purge; every change audited.\n\n{EXIT_CODES}")

TIME_FORMS = "ISO 8601 (2026-11-30T04:00Z) or a duration ago (2h, 30m, 7d)"
SINCE = typer.Option(
    None, "--since", help="Died at or after: ISO 8601 (2026-11-30T04:00Z) or a duration ago (2h, 30m, 7d)."
)
TYPE = typer.Option(None, "--type", help="Event type, e.g. order.status_changed.")
ORDER = typer.Option(None, "--order", help="The order's id (the event's aggregateId).")
LIST_COLUMNS = ("id", "aggregate_id", "event_type", "attempts", "failed_at", "state", "replay_count", "last_error")
LIST_HEADERS = {"aggregate_id": "order", "event_type": "type", "replay_count": "replays", "failed_at": "died"}
RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
DEFAULT_RATE = "100/s"


# -- input: checked before anything is connected to ------------------------------------------------


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601 (a time without a zone is UTC) or a duration ago (2h, 30m, 7d, P1D)."""
    from datetime import UTC

    from pydantic import TypeAdapter, ValidationError

    from uoom.config import Duration
    from uoom.errors import UsageError

    try:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return datetime.now(UTC) - TypeAdapter(Duration).validate_python(text)
    except ValidationError:
        raise UsageError(
            f"{option} {text!r}: use ISO 8601 (2026-11-30T04:00Z) or a duration ago (2h, 30m, 7d)"
        ) from None


def parse_id(text: str, what: str) -> uuid.UUID:
    from uoom.errors import UsageError

    try:
        return uuid.UUID(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an id (a UUID, as `uoom dlq list` shows)") from None


def parse_rate(text: str) -> float:
    """'10/s', '600/m', '10' (a second) -> events a second."""
    from uoom.errors import UsageError

    number, _, unit = text.strip().partition("/")
    try:
        rate = float(number) / RATE_UNITS[unit.strip().lower() or "s"]
    except (ValueError, KeyError):
        rate = 0.0
    if not rate > 0:
        raise UsageError(f"--rate {text!r}: use events per second or minute, e.g. 10/s, 600/m")
    return rate


def _selection(ids: list[str], all_: bool, since: str | None, event_type: str | None, order: str | None) -> Selection:
    from uoom.errors import UsageError
    from uoom.services.dead_letters import Selection

    filters = since is not None or event_type is not None or order is not None
    if not (ids or all_ or filters):
        raise UsageError("say which dead letters: IDS..., --all, --since T, --type T or --order ID")
    if ids and (all_ or filters):
        raise UsageError("give either ids or --all/--since/--type/--order, not both")
    return Selection(
        ids=tuple(dict.fromkeys(parse_id(i, "dead letter") for i in ids)),
        all=all_,
        since=parse_time(since, "--since") if since else None,
        event_type=event_type,
        order_id=parse_id(order, "--order") if order else None,
    )


# -- list, show --------------------------------------------------------------------------------------


def _summary(dead: DeadLetter) -> dict[str, Any]:
    return {
        "id": str(dead.id),
        "event_type": dead.event_type,
        "aggregate_id": str(dead.aggregate_id),
        "aggregate_version": dead.aggregate_version,
        "attempts": dead.attempts,
        "last_error": dead.last_error,
        "created_at": dead.created_at,
        "failed_at": dead.failed_at,
        "state": dead.state,
        "replay_count": dead.replay_count,
        "replayed_at": dead.replayed_at,
        "published_at": dead.published_at,
    }


@app.command("list")
@command
async def list_(
    since: str | None = SINCE,
    event_type: str | None = TYPE,
    order: str | None = ORDER,
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, the latest deaths first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Dead letters, the latest deaths first: the event, its order, attempts, when it died, its
    state (dead, replaying, delivered, replayed), replays so far, the last error."""
    from uoom.stores import outbox

    where = outbox.DeadLetterFilter(
        since=parse_time(since, "--since") if since else None,
        event_type=event_type,
        aggregate_id=parse_id(order, "--order") if order else None,
    )
    async with current().postgres() as conn:
        found = await outbox.dead_letters(conn, where, newest_first=True, limit=limit)
    rows = [_summary(d) for d in found]
    if not as_json:
        rows = [{**r, "failed_at": _second(r["failed_at"]), "last_error": _short(r["last_error"])} for r in rows]
    render(rows, LIST_COLUMNS, as_json, title="dead letters", headers=LIST_HEADERS)


@app.command()
@command
async def show(
    dead_letter_id: str = typer.Argument(..., metavar="ID", help="The dead letter's (the event's) id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One dead letter: payload, last error, the attempt history, when it died, its replays."""
    from uoom.stores import audit, outbox

    wanted = parse_id(dead_letter_id, "dead letter")
    async with current().postgres() as conn:
        dead = await outbox.dead_letter(conn, wanted)
        replays = await audit.touching(conn, wanted) if dead else []
    if dead is None:
        raise fail(f"no dead letter {wanted}; `uoom dlq list` shows them")
    shown = {
        **_summary(dead),
        "aggregate_type": dead.aggregate_type,
        "data": dead.data,
        "error_history": attempt_history(dead.error_history),
        "replays": [_replay(r) for r in replays if r.action == "dlq.replay"],
    }
    if as_json:
        emit_json(shown)
        return
    _show_table(shown)


def _replay(record: Any) -> dict[str, Any]:
    return {"audit_id": record.id, "at": record.at, "os_user": record.os_user, "host": record.host}


def _show_table(shown: dict[str, Any]) -> None:
    import orjson

    fields = ("id", "event_type", "aggregate_id", "aggregate_version", "created_at", "failed_at", "attempts",
              "state", "replay_count", "replayed_at", "published_at", "last_error")  # fmt: skip
    render([{"field": f.replace("_", " "), "value": shown[f]} for f in fields], ("field", "value"), False)
    typer.echo("")
    render(shown["error_history"], ("round", "attempt", "at", "error"), False, title="attempts")
    typer.echo("")
    render(shown["replays"], ("at", "os_user", "host", "audit_id"), False, title="replays")
    typer.echo("")
    typer.echo(orjson.dumps(shown["data"], option=orjson.OPT_INDENT_2).decode())


def attempt_history(history: list[Any]) -> list[dict[str, Any]]:
    """The attempts in order, numbered by round: each replay starts again at attempt 1."""
    rows, round_, last = [], 1, 0
    for entry in history:
        attempt = int(entry.get("attempt", 0))
        if attempt <= last:
            round_ += 1
        last = attempt
        rows.append({"round": round_, "attempt": attempt, "at": entry.get("at"), "error": entry.get("error")})
    return rows


def _second(value: Any) -> str:
    return str(value or "")[:19]


def _short(text: str, width: int = 60) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


# -- replay, purge, history ----------------------------------------------------------------------------


@app.command()
@command
async def replay(
    ids: list[str] = typer.Argument(None, metavar="IDS", help="Dead letters to replay, by id."),
    all_: bool = typer.Option(False, "--all", help="Every dead letter not replayed yet."),
    since: str | None = SINCE,
    event_type: str | None = TYPE,
    order: str | None = ORDER,
    dry_run: bool = typer.Option(False, "--dry-run", help="List exactly what would move; change nothing."),
    rate: str = typer.Option(
        DEFAULT_RATE, "--rate", help="At most this many events a second (10/s) or a minute (600/m)."
    ),
    yes: bool = YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Put dead events back on the delivery path with fresh attempts and the SAME event id, so
    consumers dedupe; the oldest event first, at most --rate a second; audited. Filters select
    the dead letters not replayed yet; an id replays its dead letter again. Exit 1 if any failed."""
    from uoom.services import dead_letters as use_case
    from uoom.stores.audit import Actor
    from uoom.stores.dead_letters import PostgresDeadLetters

    selection = _selection(ids or [], all_, since, event_type, order)
    per_second = parse_rate(rate)
    async with current().postgres() as conn:
        store = PostgresDeadLetters(conn)
        preview = await use_case.replay_dead_letters(store, selection, Actor.here(), dry_run=True)
        moving = preview.count(use_case.WOULD_REPLAY)
        if dry_run:
            report = preview
        elif moving == 0:  # nothing to ask about: say why each one stays
            report = use_case.ReplayReport(False, preview.steps)
        else:
            again = " ".join(["uoom dlq replay", *(ids or [])]) + _filters(all_, since, event_type, order)
            back = f"{moving} events go back to Kafka with their own ids, at most {per_second:g} a second"
            confirm(f"replay {moving} dead letter{'s' * (moving != 1)}", yes, losses=[back], again=again)
            with _progress(moving) as advance:
                report = await use_case.replay_dead_letters(
                    store, selection, Actor.here(), rate=per_second, on_step=advance
                )
    _report(report, per_second, as_json)
    if report.count(use_case.FAILED):
        raise typer.Exit(ExitCode.PROBLEM)


def _filters(all_: bool, since: str | None, event_type: str | None, order: str | None) -> str:
    given = [("--all", all_), (f"--since {since}", since), (f"--type {event_type}", event_type),
             (f"--order {order}", order)]  # fmt: skip
    return "".join(f" {text}" for text, value in given if value)


class _progress:
    """A progress bar on stderr, on a terminal only: `with _progress(n) as advance:`."""

    def __init__(self, total: int) -> None:
        from rich.progress import Progress

        self.bar = Progress(console=err.console, transient=True, disable=not err.console.is_terminal)
        self.task = self.bar.add_task("replaying", total=total)

    def __enter__(self) -> Any:
        self.bar.start()
        return lambda _step: self.bar.advance(self.task)

    def __exit__(self, *_: object) -> None:
        self.bar.stop()


def _report(report: ReplayReport, per_second: float, as_json: bool) -> None:
    from dataclasses import asdict

    from uoom.services.dead_letters import FAILED, REPLAYED, SKIPPED, WOULD_REPLAY

    steps = [{**asdict(s), "id": str(s.id), "aggregate_id": s.aggregate_id and str(s.aggregate_id)}
             for s in report.steps]  # fmt: skip
    counts = {"replayed": report.count(REPLAYED), "skipped": report.count(SKIPPED), "failed": report.count(FAILED),
              "would_replay": report.count(WOULD_REPLAY)}  # fmt: skip
    if as_json:
        emit_json({"dry_run": report.dry_run, **counts, "audit_id": report.audit_id,
                   "seconds": round(report.seconds, 3), "rate_per_second": per_second, "events": steps})  # fmt: skip
    else:
        render(steps, ("id", "aggregate_id", "event_type", "outcome", "reason"), False,
               headers={"aggregate_id": "order", "event_type": "type"})  # fmt: skip
    if report.dry_run:
        err.print(f"dry run: would replay {counts['would_replay']}, skip {counts['skipped']}, "
                  f"fail {counts['failed']}; nothing changed")  # fmt: skip
    else:
        audit = f" (audit #{report.audit_id})" if report.audit_id is not None else ""
        err.print(f"replayed {counts['replayed']}, skipped {counts['skipped']}, failed {counts['failed']} "
                  f"in {report.seconds:.1f} s{audit}")  # fmt: skip


@app.command()
@command
async def purge(
    before: str = typer.Option(
        ..., "--before", help="Delete dead letters that died before: ISO 8601 or a duration ago (7d)."
    ),
    yes: bool = YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete dead letters for good (replayed or not), after asking; audited."""
    from uoom.services.dead_letters import purge_dead_letters
    from uoom.stores.audit import Actor
    from uoom.stores.dead_letters import PostgresDeadLetters

    cutoff = parse_time(before, "--before")
    deleted, audit_id = 0, None
    async with current().postgres() as conn:
        store = PostgresDeadLetters(conn)
        doomed = await store.purgeable(cutoff)
        if doomed:
            confirm(f"delete {doomed} dead letter{'s' * (doomed != 1)}", yes,
                    losses=[f"{doomed} dead letters that died before {cutoff.isoformat()}: payloads and error "
                            "histories, for good"],
                    again=f"uoom dlq purge --before {before}")  # fmt: skip
            deleted, audit_id = await purge_dead_letters(store, cutoff, Actor.here())
    if as_json:
        emit_json({"deleted": deleted, "before": cutoff, "audit_id": audit_id})
    else:
        err.print(f"deleted {deleted} dead letters that died before {cutoff.isoformat()}"
                  + (f" (audit #{audit_id})" if audit_id is not None else ""))  # fmt: skip


@app.command()
@command
async def history(
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many records, the latest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The audit of every replay and purge: when, OS user, host, filter, count."""
    from uoom.stores import audit

    async with current().postgres() as conn:
        records = await audit.history(conn, "dlq.", limit)
    rows = [{**r.as_json(), "event_ids": [str(i) for i in r.event_ids]} for r in records]
    if not as_json:
        import orjson

        rows = [{**r, "at": _second(r["at"]), "filter": orjson.dumps(r["filter"]).decode()} for r in rows]
    render(rows, ("id", "at", "action", "os_user", "host", "filter", "count"), as_json,
           title="dlq audit", headers={"os_user": "user"})  # fmt: skip
