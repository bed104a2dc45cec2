"""The worker's status page: ``/`` (HTML that refreshes itself) and ``/status.json`` (its data).

What an operator looks at first: the deployment's batches in flight (read from the internal topics as
``tierline status`` reads them, at most once every ``REFRESH_S`` whoever asks), how far along each is and how
long it has left, the batches held and why, today's spend and its saving against the standard prices, and the
latest alerts. Read-only. Open on a loopback address with no key set; otherwise only with one of
``TIERLINE_STATUS_KEYS`` (or ``TIERLINE_REALTIME_KEYS``), as ``?key=`` or a bearer token, compared in constant
time. The page is rendered here, whole; its few lines of script fetch ``/?part=body`` every few seconds and put it
in place, so nothing is rendered twice in two languages.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from html import escape
from typing import Any, Awaitable, Callable
from urllib.parse import quote

from core.status import duration
from schemas.events import HELD_FOR_QUEUE
from streams.cli.status import Status, read_status
from streams.settings import Settings, is_loopback

__all__ = ["StatusBoard", "refusal", "render_page", "render_body", "REFRESH_S"]

REFRESH_S = 5.0
ENDED_WITHIN_S = 3600.0  # ended batches shown: the last hour's
ALERTS_SHOWN = 10
WHY_HELD = {HELD_FOR_QUEUE: "waiting for room in its model's queue at the provider (TIERLINE_ENQUEUED_TOKEN_LIMITS)"}


class StatusBoard:
    """The page's data, read at most once every ``REFRESH_S`` however many ask (one read at a time)."""

    def __init__(self, settings: Settings, held_by_budget: Callable[[], int],
                 read: Callable[[Settings, float], Awaitable[Status]] = read_status,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._settings, self._held_by_budget, self._read = settings, held_by_budget, read
        self._clock, self._wall = clock, wall
        self._lock = asyncio.Lock()
        self._doc: dict[str, Any] | None = None
        self._read_at = float("-inf")

    async def snapshot(self) -> dict[str, Any]:
        async with self._lock:
            if self._doc is None or self._clock() - self._read_at >= REFRESH_S:
                self._doc = as_doc(await self._read(self._settings, ENDED_WITHIN_S), self._held_by_budget(),
                                   self._wall())
                self._read_at = self._clock()
            return self._doc


def as_doc(status: Status, held_by_budget: int, now: float) -> dict[str, Any]:
    """``/status.json``: ``tierline status --json``'s fields, sorted for the page, with what is held and why."""
    doc = status.as_dict()
    batches = doc.pop("batches")
    held = [row for row in batches if row["provider_status"] in WHY_HELD]
    doc.update(
        generated_at=now,
        in_flight=[row for row in batches if row["state"] in ("intent", "submitted")
                   and row["provider_status"] not in WHY_HELD],
        held=[{**row, "why": WHY_HELD[row["provider_status"]]} for row in held],
        ended=[row for row in batches if row["state"] not in ("intent", "submitted")],
        held_by_budget=held_by_budget,  # this worker's: closed batches not yet written, over the daily budget
        alerts=doc["alerts"][:ALERTS_SHOWN],
    )
    return doc


def refusal(settings: Settings, offered: list[str]) -> tuple[int, str] | None:
    """Why the page is not shown to whoever offers ``offered`` keys (None: it is)."""
    keys = settings.status_keys
    if not keys:
        if is_loopback(settings.web_host):
            return None
        return 503, (f"the status page is off: the worker listens on {settings.web_host}, beyond this machine, and "
                     "neither TIERLINE_STATUS_KEYS nor TIERLINE_REALTIME_KEYS is set")
    if any(hmac.compare_digest(offer.encode(), key.encode()) for offer in offered for key in keys):
        return None
    return 401, "a key of TIERLINE_STATUS_KEYS (or TIERLINE_REALTIME_KEYS) is needed: /?key=KEY"


def render_page(doc: dict[str, Any], key: str | None) -> str:
    """The whole page: its body now, and the script that fetches the body again every few seconds."""
    query = f"?part=body&key={quote(key)}" if key else "?part=body"
    return _PAGE.format(body=render_body(doc), query=query, every_ms=int(REFRESH_S * 1000))


def render_body(doc: dict[str, Any]) -> str:
    now = doc["generated_at"]
    spend = f"${doc['spent_today_usd']:,.4f}"
    if doc["daily_budget_usd"]:
        spend += f" of a ${doc['daily_budget_usd']:,.2f} daily budget"
    parts = [
        "<header>",
        f"<h1>tierline</h1><p class=summary><b>{len(doc['in_flight'])}</b> batches in flight, "
        f"<b>{len(doc['held']) + doc['held_by_budget']}</b> held, <b>{len(doc['ended'])}</b> ended in the last hour. "
        f"Spent today (UTC) <b id=spent>{spend}</b>; saved <b id=saved>${doc['saved_today_usd']:,.4f}</b> against "
        "the standard prices.</p>",
        f"<p class=when>as of {time.strftime('%H:%M:%S UTC', time.gmtime(now))}; refreshed every "
        f"{REFRESH_S:g} s</p></header>",
        "<h2>In flight</h2>",
        _table(["batch", "provider", "model", "items", "progress", "provider status", "age", "left", "alert"],
               [[_batch(row), row["provider"], row["model"] or "-", f"{row['items']:,}", _progress(row),
                 row["provider_status"] or row["state"], duration(row["age_s"]), duration(row["left_s"]),
                 row["alert"] or ""] for row in doc["in_flight"]], "in-flight", "No batch is in flight."),
        "<h2>Held</h2>",
        _table(["batch", "provider", "model", "items", "why", "age"],
               [[_batch(row), row["provider"], row["model"] or "-", f"{row['items']:,}", row["why"],
                 duration(row["age_s"])] for row in doc["held"]], "held",
               f"{doc['held_by_budget']} closed batch(es) held over the daily budget on this worker."
               if doc["held_by_budget"] else "No batch is held."),
        "<h2>Ended in the last hour</h2>",
        _table(["batch", "provider", "model", "items", "done", "failed", "cost"],
               [[_batch(row), row["provider"], row["model"] or "-", f"{row['items']:,}", f"{row['done']:,}",
                 f"{row['failed']:,}", f"${row['cost_usd']:,.4f}"] for row in doc["ended"]], "ended",
               "No batch ended in the last hour."),
        "<h2>Latest alerts</h2>",
        _table(["when", "kind", "provider", "batch", "what"],
               [[f"{duration(now - (alert.get('at') or now))} ago", alert.get("kind", ""), alert.get("provider", ""),
                 alert.get("batch_id") or alert.get("batch_key", ""), alert.get("message", "")]
                for alert in doc["alerts"]], "alerts", "No alert."),
    ]
    return "\n".join(parts)


def _batch(row: dict[str, Any]) -> str:
    return str(row["batch_id"] or row["batch_key"])


class _Html(str):
    """A cell that is HTML of ours (a progress bar): every other cell is text, escaped, whatever it holds (a model
    name, an alert's message: a producer's bytes)."""


def _progress(row: dict[str, Any]) -> _Html:
    share = row["done"] / row["items"] if row["items"] else 0.0
    return _Html(f"<progress max=1 value={share:.3f}></progress> {row['done']:,}/{row['items']:,}")


def _table(head: list[str], rows: list[list[str]], name: str, empty: str) -> str:
    if not rows:
        return f"<p class=empty id={name}>{escape(empty)}</p>"
    cells = "".join(f"<th>{escape(title)}</th>" for title in head)
    body = "".join("<tr>" + "".join(f"<td>{cell if isinstance(cell, _Html) else escape(cell)}</td>"
                                    for cell in row) + "</tr>" for row in rows)
    return f"<table id={name}><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
<title>tierline status</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; }}
h1 {{ font-size: 1.4em; margin: 0; }} h2 {{ font-size: 1.05em; margin: 1.4em 0 .4em; }}
table {{ border-collapse: collapse; width: 100%; }} th, td {{ text-align: left; padding: .25em .6em; }}
th {{ border-bottom: 2px solid #c9cfdb; font-weight: 600; }} tr:nth-child(even) td {{ background: #f3f5f9; }}
td {{ font-variant-numeric: tabular-nums; }} progress {{ width: 6em; vertical-align: middle; }}
.when, .empty {{ color: #5b6475; }}
</style></head>
<body><main id=body>
{body}
</main>
<script>
setInterval(async () => {{
  try {{
    const answer = await fetch("{query}", {{cache: "no-store"}});
    if (answer.ok) document.getElementById("body").innerHTML = await answer.text();
  }} catch (error) {{ /* the worker restarting: the next refresh tries again */ }}
}}, {every_ms});
</script>
</body></html>
"""
