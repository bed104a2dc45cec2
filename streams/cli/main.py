"""The ``tierline`` command."""

from __future__ import annotations

import asyncio
import difflib
import functools
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

import click

from providers.lanes.declaration import Lane
from schemas.topics import PUBLIC
from streams.secret_files import read_secret_files
from streams.settings import PROVIDER_ENV, Settings, SettingsError
from streams.cli.tail import tail

__all__ = ["main"]


UTC_TIME = click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])
#: Where a command's Kafka options are kept for ``_settings`` (the click context's meta).
_KAFKA = "tierline.kafka"
F = TypeVar("F", bound=Callable[..., Any])


def _settings() -> Settings:
    """The settings from the environment (and a ``.env``), with the command's ``--broker`` and ``--topic-prefix``."""
    given = click.get_current_context().meta.get(_KAFKA, {})
    try:
        return Settings.from_env({**os.environ, **{name: value for name, value in given.items() if value is not None}})
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def kafka_options(command: F) -> F:
    """``-b/--broker`` and ``--topic-prefix``, as Kafka's own tools name them; the environment's by default."""
    @click.option("-b", "--broker", metavar="HOST:PORT[,...]", default=None,
                  help="Kafka bootstrap server(s) [default: TIERLINE_BROKER, else 127.0.0.1:9092].")
    @click.option("--topic-prefix", metavar="PREFIX", default=None,
                  help="The deployment's topic prefix [default: TIERLINE_TOPIC_PREFIX, else none].")
    @functools.wraps(command)
    def with_kafka(*args: Any, broker: str | None, topic_prefix: str | None, **kwargs: Any) -> Any:
        click.get_current_context().meta[_KAFKA] = {"TIERLINE_BROKER": broker, "TIERLINE_TOPIC_PREFIX": topic_prefix}
        _refuse_what_is_not_kafka(_settings())
        return command(*args, **kwargs)
    return with_kafka  # type: ignore[return-value]


def _refuse_what_is_not_kafka(settings: Settings) -> None:
    """Exit 1 at once when the broker's address cannot be Kafka as set (a name that does not resolve, a port that
    speaks HTTP, TLS to a plaintext listener), where a client would first wait out its timeouts. A broker that
    does not answer yet is left to each command: ``submit`` waits for it, for one."""
    from streams.kafka.diagnose import probe

    found = asyncio.run(probe(settings.kafka))
    if found is not None and not found.away:
        click.echo(f"cannot reach Kafka at {settings.broker}: {found.reason}", err=True)
        sys.exit(1)


class _Commands(click.Group):
    """tierline's commands; a mistyped one gets the closest as a suggestion."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                           list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            close = difflib.get_close_matches(args[0], self.list_commands(ctx), n=1) if args else []
            if close:
                raise click.UsageError(f"{exc.message} Did you mean {close[0]!r}?", ctx) from None
            raise


def _lanes_in(providers_file: str | None) -> list[Lane]:
    """The lanes a providers file declares, read as the worker reads it; a bad file is a usage error."""
    if not providers_file:
        return []
    try:
        return Settings(providers_file=providers_file).lanes
    except SettingsError as exc:
        raise click.BadParameter(str(exc), param_hint="--providers-file") from None


def _utc_ms(moment: datetime | None) -> int | None:
    return int(moment.replace(tzinfo=timezone.utc).timestamp() * 1000) if moment else None


def _broker_failed(settings: Settings, doing: str, exc: Exception) -> NoReturn:
    from streams.kafka.diagnose import explain
    from streams.kafka.topics import TopicsMismatch

    reason = str(exc) if isinstance(exc, TopicsMismatch) else asyncio.run(explain(settings.kafka, exc))
    click.echo(f"could not {doing} on {settings.broker}: {reason}", err=True)
    sys.exit(1)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierline", message="%(prog)s %(version)s")
def main() -> None:
    """tierline: AI work from Kafka to the right provider tier, batch at half price.

    Settings are TIERLINE_* variables (docs/reference/settings.md lists them), read from the environment and from
    a .env file in the current directory (TIERLINE_ENV_FILE names another; empty, none), the environment first.
    NAME_FILE=PATH reads a setting or a provider's key from a file (compose and Kubernetes secrets).
    """
    from dotenv import load_dotenv

    from streams.logs import configure_logging

    env_file = os.environ.get("TIERLINE_ENV_FILE", ".env")  # empty: none (the embedded stack's own processes)
    if env_file:
        load_dotenv(Path(env_file), override=False)  # as compose reads it: the same file serves both
    try:
        read_secret_files(os.environ, {env for env, _, _ in Settings.documented()} | set(PROVIDER_ENV))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging("warning", libraries="critical")  # the CLI says what failed itself; the worker sets its own


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=9092, show_default=True,
              help="Port to listen and advertise on 127.0.0.1.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Keep the topics in DIR (SeaweedFS on disk): they survive restarts. Without it, memory only.")
def broker(port: int, data: Path | None) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) in the foreground."""
    if data is not None:
        _durable_broker(port, data)
        return
    from streams.local.stack import LocalStackMissing, broker_argv

    try:
        proc = subprocess.Popen(broker_argv(port))
    except LocalStackMissing as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"broker listening on 127.0.0.1:{port} (memory storage: a restart loses everything; "
               "--data DIR keeps it)", err=True)

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()
    sys.exit(0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code)


def _durable_broker(port: int, data: Path) -> NoReturn:
    from streams.local.durable import durable_broker
    from streams.local.stack import LocalStackMissing

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds the with block: Tansu stops, then SeaweedFS

    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    try:
        with durable_broker(data, port) as proc:
            click.echo(f"broker listening on 127.0.0.1:{port}, its topics kept in {data} (SeaweedFS); ready in "
                       f"{time.monotonic() - started:.1f} s", err=True)
            code = proc.wait()
    except KeyboardInterrupt:
        sys.exit(0)
    except LocalStackMissing as exc:
        raise click.ClickException(str(exc)) from None
    except (RuntimeError, TimeoutError) as exc:
        click.echo(f"tierline broker: {exc}; the logs are in {data}", err=True)
        sys.exit(1)
    click.echo(f"tierline broker: Tansu exited with code {code}; see {data / 'broker.log'}", err=True)
    sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(1, 65535), default=8800, show_default=True)
@click.option("--batch-seconds", default=2.0, show_default=True, help="How long each batch takes to end.")
@click.option("--error-rate", default=0.0, show_default=True, help="Share of requests failing with a retryable error.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random faults.")
@click.option("--expires-after", default=86_400.0, show_default=True,
              help="Seconds after creation each batch says it expires (not enforced: for testing stuck batches).")
@click.option("--first-token-ms", default=0.0, show_default=True, help="Streaming: wait before the first token.")
@click.option("--token-ms", default=0.0, show_default=True, help="Streaming: wait between tokens.")
@click.option("--rpm", default=0, show_default=True,
              help="Requests per minute the synchronous endpoints take before answering 429 (0: no limit).")
@click.option("--bedrock-min-records", default=100, show_default=True,
              help="Fewest records a Bedrock job may hold; fewer fail validation.")
@click.option("--bedrock-max-jobs", default=0, show_default=True,
              help="Bedrock jobs in progress per model before creates are refused (0: no limit).")
@click.option("--enqueued-token-limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="OpenAI: input tokens per model waiting in unfinished batches; a batch past it fails "
                   "validation with token_limit_exceeded (0: no limit).")
@click.option("--anthropic-queue-limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Anthropic: requests processing across batches; a create past it gets 429 (0: no limit).")
@click.option("--gemini-max-jobs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Gemini: batch jobs pending or running before creates get 429 RESOURCE_EXHAUSTED (0: no limit).")
@click.option("--flex-latency-ms", default=0.0, show_default=True,
              help="OpenAI flex processing (service_tier: flex): added wait before each answer.")
@click.option("--flex-unavailable-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="OpenAI flex processing: share of calls refused with 429 resource unavailable.")
@click.option("--providers-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Serve the lanes this file declares (TIERLINE_PROVIDERS_FILE's format) with their quirks.")
@click.option("--transient-404-s", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="S",
              help="Retrieving a batch (and Anthropic's results) answers 404 for S seconds after its create.")
@click.option("--messy-results", is_flag=True,
              help="The first download of each batch's results breaks off half way; OpenAI says error_file_id \"\" "
                   "of clean batches and writes server errors with status_code 0.")
def emulator(host: str, port: int, batch_seconds: float, error_rate: float, seed: int, expires_after: float,
             first_token_ms: float, token_ms: float, rpm: int, bedrock_min_records: int, bedrock_max_jobs: int,
             enqueued_token_limit: int, anthropic_queue_limit: int, gemini_max_jobs: int,
             flex_latency_ms: float, flex_unavailable_rate: float, providers_file: str | None,
             transient_404_s: float, messy_results: bool) -> None:
    """Run the provider emulator: OpenAI Files/Batch, Anthropic Message Batches, Bedrock batch inference
    (its files in the S3 server AWS_ENDPOINT_URL_S3 names), Gemini Batch and Files, and the synchronous APIs."""
    from emulator.server import EmulatorConfig, serve
    from streams.gc_tuning import tune_gc

    if not 0.0 <= error_rate <= 1.0:
        raise click.BadParameter("must be between 0 and 1", param_hint="--error-rate")
    click.echo(f"emulator on http://{host}:{port}: OPENAI_BASE_URL=http://{host}:{port}/v1 "
               f"ANTHROPIC_BASE_URL=http://{host}:{port} AWS_ENDPOINT_URL_BEDROCK=http://{host}:{port} "
               f"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://{host}:{port} GOOGLE_GEMINI_BASE_URL=http://{host}:{port}/gemini",
               err=True)
    tune_gc()
    loop = asyncio.new_event_loop()
    config = EmulatorConfig(batch_seconds, error_rate, seed, expires_after_s=expires_after,
                            first_token_s=first_token_ms / 1000, token_s=token_ms / 1000, requests_per_minute=rpm,
                            bedrock_min_records=bedrock_min_records, bedrock_max_jobs=bedrock_max_jobs,
                            openai_enqueued_token_limit=enqueued_token_limit,
                            anthropic_queue_limit=anthropic_queue_limit, gemini_max_jobs=gemini_max_jobs,
                            transient_404_s=transient_404_s, lanes=tuple(_lanes_in(providers_file)),
                            flex_latency_s=flex_latency_ms / 1000, flex_unavailable_rate=flex_unavailable_rate,
                            messy_results=messy_results)
    task = loop.create_task(serve(config, host=host, port=port))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


@main.command()
@kafka_options
def worker() -> None:
    """Run a worker with every agent (settings from TIERLINE_* variables)."""
    from streams.worker import run_worker

    run_worker(_settings())


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--allow-invalid", is_flag=True,
              help="Publish invalid lines too: they go to the dead-letter topic (all but those too large to carry).")
@click.option("--follow", is_flag=True,
              help="Show progress until every item has a result or has failed for good; exit 1 if any failed.")
@click.option("--timeout", type=float, default=None, metavar="S", help="With --follow: give up after S seconds.")
@click.option("--kafka-wait", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="S",
              help="How long to wait for a Kafka that does not answer, before publishing and while following; "
                   "then exit 4.")
@click.option("--quote", is_flag=True,
              help="Publish nothing: print what the file would cost (per tier, provider and model: items, batches, "
                   "tokens, batch and realtime prices) and what the daily budget and enqueued-token limits would "
                   "hold back.")
@click.option("--json", "as_json", is_flag=True, help="With --quote: print the quote as JSON.")
@kafka_options
def submit(file: Path, allow_invalid: bool, follow: bool, timeout: float | None, kafka_wait: float, quote: bool,
           as_json: bool) -> None:
    """Publish the work items of a JSONL file (one item per line) to the requests topic."""
    from streams.cli.produce import check_lines, numbered_jsonl

    settings = _settings()
    if as_json and not quote:
        raise click.UsageError("--json goes with --quote")
    if quote:
        if follow:
            raise click.UsageError("--quote publishes nothing: there is nothing to --follow")
        import orjson

        from streams.cli.quoting import as_dict, quote_file, render

        found, rejected = quote_file(settings, file)
        click.echo(orjson.dumps(as_dict(found, rejected), option=orjson.OPT_INDENT_2).decode() if as_json
                   else render(found, rejected, file))
        return
    invalid = too_large = 0
    for problem in check_lines(numbered_jsonl(file), settings):  # the file is read again to publish it
        invalid += 1
        too_large += problem.reason == "item_too_large"
        if invalid <= 20:
            click.echo(f"{file}:{problem.number}: {problem.reason}: {problem.message}", err=True)
    if invalid and not allow_invalid:
        more = f" (and {invalid - 20} more)" if invalid > 20 else ""
        click.echo(f"{invalid} invalid line(s){more}: fix them, or pass --allow-invalid to send them "
                   "to the dead-letter topic. Nothing was published.", err=True)
        sys.exit(2)
    if too_large:  # not even as dead letters: a record that large may not reach the topic at all
        click.echo(f"{too_large} line(s) too large to publish (item_too_large above): shorten them. "
                   "Nothing was published.", err=True)
        sys.exit(2)
    from streams.kafka.wait import KafkaAway

    try:
        sys.exit(asyncio.run(_submit(settings, file, follow, timeout, kafka_wait)))
    except KeyboardInterrupt:
        click.echo("\nstopped following; the items go on being processed", err=True)
        sys.exit(130)
    except KafkaAway as away:
        click.echo(f"gave up: {away}", err=True)
        sys.exit(4)
    except Exception as exc:  # noqa: BLE001 - any broker failure: say what to check
        _broker_failed(settings, "publish", exc)


async def _submit(settings: Settings, file: Path, follow: bool, timeout: float | None,
                  kafka_wait_s: float) -> int:
    from streams.cli.follow import Follower, wanted_of
    from streams.cli.produce import iter_jsonl, publish_lines
    from streams.kafka.topics import require_topics
    from streams.kafka.wait import Absence, once_kafka_answers

    absence = Absence(kafka_wait_s, lambda text: click.echo(text, err=True))
    await once_kafka_answers(settings.kafka, lambda: require_topics(settings, "requests"), absence)
    if not follow:
        count = await publish_lines(settings, iter_jsonl(file))
        click.echo(f"published {count} item(s) to {settings.topics.requests}")
        return 0
    wanted, unkeyed = wanted_of(iter_jsonl(file))  # unkeyed (--allow-invalid): dead letters to come
    async with Follower(settings, wanted, unkeyed) as follower:
        count = await publish_lines(settings, iter_jsonl(file))
        click.echo(f"published {count} item(s) to {settings.topics.requests}; following them (Ctrl-C stops "
                   "following, not the work)", err=True)
        finished = await follower.until_done(timeout, kafka_wait_s=kafka_wait_s)
    p = follower.progress
    click.echo(f"{len(p.succeeded):,} succeeded ({p.after_retry:,} after a retry), {len(p.failed - p.succeeded):,} "
               f"failed for good, {p.dead_lettered:,} dead-lettered, {len(p.skipped):,} skipped (already succeeded); "
               f"{len(p.batches):,} provider batch(es), {p.tokens['input']:,} input and {p.tokens['output']:,} "
               f"output tokens, ${p.cost_usd:,.4f} (${p.realtime_usd - p.cost_usd:,.4f} saved against realtime)")
    if not finished:
        click.echo(f"gave up following after {timeout:g}s with {p.total - p.ended:,} item(s) not ended; "
                   "they go on being processed (tierline status shows the batches)", err=True)
        return 3
    return 0 if p.ok else 1


@main.command()
@click.option("--reprocess", metavar="NAME", default=None,
              help="Process the items again even if they succeeded, as the re-run NAME (events carry it).")
@click.option("--custom-id", "custom_ids", multiple=True, metavar="ID", help="Only this item (repeatable).")
@click.option("--since", type=UTC_TIME, default=None, help="Only items published at or after this UTC time.")
@kafka_options
def replay(reprocess: str | None, custom_ids: tuple[str, ...], since: datetime | None) -> None:
    """Publish the requests topic's items again, as an operator reprocesses.

    Without --reprocess an item that already succeeded is left out, so this re-runs what failed.
    With --reprocess NAME everything is processed again, once per NAME.
    """
    from streams.cli.replay import replay as run_replay
    from streams.gc_tuning import tune_gc

    settings = _settings()
    if reprocess is not None and not 0 < len(reprocess) <= 64:
        raise click.BadParameter("must be 1 to 64 characters", param_hint="--reprocess")
    since_ms = _utc_ms(since)
    tune_gc()  # a record object each, for the whole topic: the worker's settings
    try:
        counts = asyncio.run(run_replay(settings, reprocess, frozenset(custom_ids), since_ms))
    except Exception as exc:  # noqa: BLE001 - any broker failure: say what to check
        _broker_failed(settings, "replay", exc)
    click.echo(f"published {counts.published} item(s) again to {settings.topics.requests}"
               + (f" as re-run {reprocess!r}" if reprocess else "")
               + f"; left out {counts.succeeded} that already succeeded"
               + (" under that name" if reprocess else " (--reprocess NAME runs them again)")
               + (f"; {counts.copies} forwarded copies went as their originals" if counts.copies else ""))
    if counts.not_work_items:
        click.echo(f"{counts.not_work_items} message(s) were not work items (they are on the dead-letter topic)",
                   err=True)


@main.command(name="tail")
@click.argument("topic", type=click.Choice(PUBLIC))
@click.option("--custom-id", default=None, metavar="ID", help="Only this item's events.")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event instead of the newest.")
@click.option("--limit", type=int, default=None, help="Stop after this many events.")
@click.option("--idle", type=float, default=None, metavar="S", help="Stop when nothing arrives for S seconds.")
@click.option("--json", "raw", is_flag=True, help="Print each value as it is (JSON), one per line.")
@kafka_options
def tail_command(topic: str, custom_id: str | None, from_beginning: bool, limit: int | None, idle: float | None,
                 raw: bool) -> None:
    """Print a public topic's events readably, as they arrive (Ctrl-C to stop)."""
    settings = _settings()
    try:
        asyncio.run(tail(settings, topic, custom_id, from_beginning, limit, raw, click.echo, idle))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - any broker failure: say what to check
        _broker_failed(settings, f"read {settings.topics.named(topic)}", exc)


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Every batch still on record, not only recent ones.")
@click.option("--recent", default=3600.0, show_default=True, metavar="S",
              help="Also show batches that ended in the last S seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the batches as JSON.")
@click.option("--wide", is_flag=True,
              help="Every column, ids and models whole (without it the table fits 120 characters).")
@click.option("--watch", type=click.FloatRange(min=0.5), default=None, is_flag=False, flag_value=2.0, metavar="[S]",
              help="Show it again every S seconds (2 when not given) until Ctrl-C.")
@kafka_options
def status(show_all: bool, recent: float, as_json: bool, wide: bool, watch: float | None) -> None:
    """Every batch in flight: provider, ids, counts, age, time left, alerts."""
    import orjson

    from streams.cli.status import read_status, render

    settings = _settings()
    while True:
        try:
            found = asyncio.run(read_status(settings, None if show_all else recent))
        except KeyboardInterrupt:
            return
        except Exception as exc:  # noqa: BLE001 - any broker failure: say what to check
            _broker_failed(settings, "read the batches", exc)
        shown = orjson.dumps(found.as_dict(), option=orjson.OPT_INDENT_2).decode() if as_json else \
            render(found, wide)
        if watch is None:
            click.echo(shown)
            return
        if sys.stdout.isatty():
            click.clear()
        click.echo(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC, every {watch:g} s (Ctrl-C stops)\n{shown}")
        try:
            time.sleep(watch)
        except KeyboardInterrupt:
            return


@main.command()
@click.option("--since", type=UTC_TIME, default=None, help="From this UTC time (default: all results kept).")
@click.option("--until", type=UTC_TIME, default=None, help="Up to this UTC time (default: now).")
@click.option("--by", default=None, metavar="metadata.KEY",
              help="Group by a metadata field producers set (metadata.team, say) instead of tier, provider, model.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print the figures as CSV (a header row, a row per group, the total).")
@kafka_options
def report(since: datetime | None, until: datetime | None, by: str | None, as_json: bool, as_csv: bool) -> None:
    """Spend per tier, provider and model, and what the same tokens would have cost in realtime."""
    import orjson

    from core.report import check_by
    from streams.cli.report import render, render_csv, spend_report

    if (problem := check_by(by)) is not None:
        raise click.BadParameter(problem, param_hint="--by")
    settings = _settings()
    since_ms, until_ms = _utc_ms(since), _utc_ms(until)
    try:
        figures = asyncio.run(spend_report(settings, since_ms, until_ms, by))
    except Exception as exc:  # noqa: BLE001 - any broker failure: say what to check
        _broker_failed(settings, "read the results", exc)
    if as_json:
        click.echo(orjson.dumps(figures.as_dict(), option=orjson.OPT_INDENT_2).decode())
    elif as_csv:
        click.echo(render_csv(figures))
    else:
        click.echo(render(figures, since_ms, until_ms))


@main.command()
@click.argument("batch")
@click.option("--fail", "then", flag_value="fail", help="Items that never ran end with a final failure.")
@click.option("--retry", "then", flag_value="retry", default=True,
              help="Items that never ran are retried one by one (the default).")
@kafka_options
def cancel(batch: str, then: str) -> None:
    """Cancel BATCH (a provider batch id or a tierline batch key) at its provider."""
    from streams.cli.cancel import CancelError, cancel_batch

    settings = _settings()
    try:
        record = asyncio.run(cancel_batch(settings, batch, then))
    except CancelError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - any broker failure: say what to check
        _broker_failed(settings, "cancel", exc)
    fate = "retried one by one" if then == "retry" else "failed for good"
    click.echo(f"cancelling {record.provider} batch {record.batch_id} ({record.item_count} items); "
               f"items that never ran will be {fate}")


@main.command()
@click.option("--workload", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSONL file of work items (default: the shipped sample, 2,448 lines).")
@click.option("--batch-seconds", default=3.0, show_default=True, help="Emulated provider time per batch.")
@click.option("--timeout", default=300.0, show_default=True, help="Give up after this many seconds.")
@click.option("--keep", is_flag=True, help="Keep everything running afterwards, for status, report and /metrics.")
def demo(workload: Path | None, batch_seconds: float, timeout: float, keep: bool) -> None:
    """Start broker, emulator and worker; show the realtime, async and batch tiers on a sample; print a summary."""
    from streams.local.demo import run_demo
    from streams.local.stack import LocalStackMissing

    try:
        sys.exit(run_demo(workload, batch_seconds, timeout, keep))
    except LocalStackMissing as exc:
        raise click.ClickException(str(exc)) from None
