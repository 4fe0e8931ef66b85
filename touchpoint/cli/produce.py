"""`touchpoint produce FILE|-`: send JSON Lines touchpoints to the events topic."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from touchpoint.config import get_settings
from touchpoint.errors import ConfigError
from touchpoint.local_broker import ensure_broker
from touchpoint.producers.pseudonymise import Pseudonymiser
from touchpoint.producers import InvalidLine, JsonlSummary, TouchpointProducer, produce_jsonl
from touchpoint.producers.producer import KAFKA_LOG

_PROGRESS_MIN_BYTES = 1_000_000  # below this a file is done before a bar would be readable
_SHOWN_INVALID = 50  # list this many refused lines, then only count them


def produce(
    file: str = typer.Argument(
        ..., metavar="FILE|-", help="JSON Lines file (one touchpoint per line), or - for standard input."
    ),
    topic: str | None = typer.Option(
        None, "--topic", "-t", help="Topic to produce to (default: the events topic from settings, e.g. touchpoint.events)."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: on for files over 1 MB when stderr is a terminal)."
    ),
    flush_timeout: float = typer.Option(
        60.0, "--flush-timeout", min=0,
        help="Seconds to wait, in all, for the deliveries still pending after the last line; then they are given up.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the Kafka client's own log (connection attempts, retries)."),
    pseudonymise: str | None = typer.Option(
        None, "--pseudonymise", metavar="FIELDS",
        help="Replace these fields with HMAC-SHA256 before encoding, e.g. customer_id,anonymous_id,context.email "
             "(default: TOUCHPOINT_PSEUDONYMISE_FIELDS). The key comes from TOUCHPOINT_PSEUDONYMISE_KEY(_FILE), "
             "never from the command line.",
    ),
) -> None:
    """Validate, encode (Avro) and produce JSON Lines touchpoints (the JSON shape of schemas/README.md).

    Invalid lines (including an event larger than the topic accepts) are reported with their line number and
    reason and skipped; every valid line is still sent, whatever happens to the delivery of another. A summary is
    always printed. Exit code: 0 when every line was sent and delivered, 1 when any line was invalid or any
    delivery failed.
    """
    err = Console(stderr=True, highlight=False)
    _route_kafka_log(verbose)
    settings = get_settings()
    pseudonymiser = Pseudonymiser.from_settings(settings, pseudonymise)  # a bad field or no key: error before sending
    ensure_broker(settings)
    stream, size = _open(file)
    shown = 0

    def report_invalid(line: InvalidLine) -> None:
        nonlocal shown
        shown += 1
        if shown <= _SHOWN_INVALID:
            err.print(f"[yellow]invalid[/yellow] line {line.line}: {escape(line.reason)}", soft_wrap=True)
        elif shown == _SHOWN_INVALID + 1:
            err.print(f"[yellow]... more invalid lines; only the first {_SHOWN_INVALID} are listed[/yellow]")

    use_bar = progress if progress is not None else (err.is_terminal and size is not None and size >= _PROGRESS_MIN_BYTES)
    producer = TouchpointProducer(settings, topic=topic, pseudonymise=pseudonymiser or False)
    summary = JsonlSummary()
    started = False
    try:
        producer.check_topic()
        limit = producer.message_limit()
        started = True
        if verbose:
            err.print(f"[dim]largest event {producer.topic} accepts: {limit.max_bytes:,} bytes ({limit.source})[/dim]")
        if use_bar:
            columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
            columns += [DownloadColumn()] if size is not None else []
            with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
                task = bar.add_task(f"producing to {producer.topic}", total=size)
                produce_jsonl(
                    _lines(stream), producer, on_invalid=report_invalid, flush_timeout=flush_timeout, summary=summary,
                    on_progress=lambda lines, read: bar.update(task, completed=read, description=f"{lines:,} lines"),
                )
        else:
            produce_jsonl(_lines(stream), producer, on_invalid=report_invalid, flush_timeout=flush_timeout,
                          summary=summary)
    finally:
        # Whatever stopped the run (an error, Ctrl-C), give up what is still in flight (each counts as a failed
        # delivery) and say what was done. After a normal run produce_jsonl has given up the late ones already.
        producer.abort()
        if stream is not sys.stdin.buffer:
            stream.close()
        if started:
            _print_summary(err, summary, producer.topic, flush_timeout, settings.bootstrap_servers, verbose)
        producer.close(5.0)  # nothing is left after abort(): this only serves the purged records' callbacks
    if not summary.ok:
        raise typer.Exit(1)


def _route_kafka_log(verbose: bool) -> None:
    """librdkafka's log lines (one per failed connection attempt) only with --verbose: without it, our own
    messages say what went wrong once (broker unreachable, deliveries not acknowledged)."""
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s kafka %(levelname)s %(message)s"))
        KAFKA_LOG.addHandler(handler)
        KAFKA_LOG.setLevel(logging.DEBUG)
    else:
        KAFKA_LOG.setLevel(logging.CRITICAL + 1)
    KAFKA_LOG.propagate = False


def _print_summary(err: Console, summary: JsonlSummary, topic: str, flush_timeout: float, bootstrap: str,
                   verbose: bool) -> None:
    for failure in summary.failures:
        err.print(f"[red]delivery failed[/red]: {escape(str(failure))}", soft_wrap=True)
    undelivered = summary.undelivered
    colour = "green" if summary.ok else "red"
    err.print(
        f"[{colour}]{summary.sent:,} sent[/{colour}] to {escape(topic)} ({summary.delivered:,} delivered), "
        f"{len(summary.invalid):,} invalid line(s), {summary.failed:,} failed deliveries"
        + (f", {undelivered:,} not acknowledged within {flush_timeout:g}s and given up (is the broker at "
           f"{bootstrap} reachable?{'' if verbose else ' --verbose shows the Kafka client log'})" if undelivered else ""),
        soft_wrap=True,
    )


def _open(file: str) -> tuple[BinaryIO, int | None]:
    if file == "-":
        return sys.stdin.buffer, None
    try:
        stream = Path(file).open("rb")
        return stream, os.fstat(stream.fileno()).st_size
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}; give a JSON Lines file or - for standard input") from exc


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    # Binary on purpose: a line that is not UTF-8 is reported as such instead of stopping the whole read.
    yield from stream
