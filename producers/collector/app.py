"""The collector's HTTP application (aiohttp): routes, the batch handler, and start/stop.

``POST /v1/batch`` in ten steps:
 1. Origin not on the allow-list -> 403 (nothing read, nothing produced).
 2. Write key (basic-auth user, ``X-Touchpoint-Key`` or ``?writeKey=``) missing, unknown or revoked -> 401.
 3. Kafka not answering (``/readyz``) -> 503 with Retry-After.
 4. Content type not JSON / JSON Lines / text -> 415; Content-Length over the request limit -> 413.
 5. The body (gzip undone) is read within ``collector_read_timeout_seconds`` (else 408) and up to the request
    limit (else 413).
 6. It is split into items with their original bytes; malformed JSON -> 400; too many events or an oversize
    event -> 413. Nothing has been produced yet, so every refusal so far is whole.
 7. No room in the producer queue for all of them -> 503 (nothing queued).
 8. Each item: ``source`` set from the key, converted (``event_from_json``), its type and channel checked against
    the key, then sent with the SDK producer (which validates and encodes). A refused item is recorded with
    index, field and rule and its original bytes go to the dead-letter topic.
 9. Await Kafka's acknowledgement of every event and dead letter; failure or timeout -> 503 (retry all).
10. Answer 200 (all accepted), 207 (some refused) or 400 (all refused), with the refusals listed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from touchpoint.config import Settings
from touchpoint.errors import RetryableError, ValidationError
from touchpoint.metrics import (
    COLLECTOR_EVENTS_ACCEPTED, COLLECTOR_EVENTS_REJECTED, COLLECTOR_IN_FLIGHT, COLLECTOR_REQUEST_LATENCY, COLLECTOR_REQUESTS, REGISTRY,
)
from touchpoint.schemas.json_shape import event_from_json

from touchpoint.producers.builders import EventType
from touchpoint.producers.collector.body import ACCEPTED_TYPES, BodyError, Item, Limits, split_items, too_large
from touchpoint.producers.collector.cors import OriginPolicy
from touchpoint.producers.collector.delivery import Acks, Delivery, NotAcknowledged
from touchpoint.producers.collector.keys import KeyStore, WriteKey
from touchpoint.producers.collector.openapi import document

log = logging.getLogger(__name__)

KEY_HEADER = "X-Touchpoint-Key"
KEY_QUERY = "writeKey"
_ROUTES = frozenset({"/v1/batch", "/healthz", "/readyz", "/metrics", "/openapi.json", "/touchpoint.js"})
_CHUNK = 64 * 1024
_EVENT_TYPES = frozenset(t.value for t in EventType)


def tracker_source() -> bytes:
    """The browser tracker served at ``/touchpoint.js``."""
    return (resources.files("touchpoint.producers.collector") / "touchpoint.js").read_bytes()


class Collector:
    """The state the handlers share: settings, keys, origins, limits and the Kafka side."""

    def __init__(self, settings: Settings, delivery: Delivery, keys: KeyStore) -> None:
        self.settings = settings
        self.delivery = delivery
        self.keys = keys
        self.origins = OriginPolicy(settings.collector_allowed_origins)
        self.limits = Limits(settings.collector_max_event_bytes, settings.collector_max_request_bytes,
                             settings.collector_max_events)
        self.openapi = json.dumps(document(settings)).encode()
        self.tracker = tracker_source()

    # --- POST /v1/batch ------------------------------------------------------------------------------
    async def batch(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        COLLECTOR_IN_FLIGHT.inc()
        try:
            return await self._batch(request)
        finally:
            COLLECTOR_IN_FLIGHT.dec()
            COLLECTOR_REQUEST_LATENCY.observe(time.perf_counter() - started)

    async def _batch(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if not self.origins.allows(origin):
            return _json(403, {"error": "origin not allowed"})
        cors = dict(self.origins.headers(origin))
        key = self.keys.lookup(_write_key(request))
        if key is None:
            return _json(401, {"error": "unauthorized"}, {**cors, "WWW-Authenticate": 'Basic realm="touchpoint"'})
        if not self.delivery.ready:
            return self._unavailable("Kafka is not reachable", cors)
        content_type = request.content_type if "Content-Type" in request.headers else ""
        try:
            if request.content_length is not None and request.content_length > self.limits.max_request_bytes:
                raise too_large(self.limits)
            if content_type in ACCEPTED_TYPES:
                body = await asyncio.wait_for(self._read(request), self.settings.collector_read_timeout_seconds)
            else:
                body = b""
            items = split_items(body, content_type, self.limits)
        except TimeoutError:
            return _json(408, {"error": f"the body did not arrive within {self.settings.collector_read_timeout_seconds:g}s"},
                         {**cors, "Connection": "close"})
        except BodyError as exc:
            return _json(exc.status, exc.body(), cors)
        if not self.delivery.has_room(len(items)):
            return self._unavailable("the producer queue is full", cors)
        return await self._produce(items, key, cors)

    async def _read(self, request: web.Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = await request.content.read(_CHUNK)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > self.limits.max_request_bytes:
                    raise too_large(self.limits)
                chunks.append(chunk)
        except (RequestPayloadError, HttpProcessingError, ValueError, EOFError, OSError) as exc:
            # aiohttp's answer to a broken gzip stream (RequestPayloadError) or a truncated body
            message = " ".join(str(exc).split())
            raise BodyError(400, f"the body could not be read ({message}); check its Content-Encoding"[:300]) from None

    async def _produce(self, items: list[Item], key: WriteKey, cors: dict[str, str]) -> web.Response:
        acks = Acks()
        accepted: dict[str, int] = {}
        refused: list[tuple[Item, str, str, str, object]] = []
        send, source = self.delivery.send, key.source
        for item in items:
            obj = item.obj
            event_type = obj.get("event_type") if isinstance(obj, dict) else None
            try:
                if item.error is not None:
                    raise _Refused("(event)", item.error, "not_json")
                if isinstance(obj, dict):
                    obj["source"] = source  # the key says who speaks; the body's claim is ignored
                event = event_from_json(obj)
                if event["event_type"] not in key.event_types:
                    raise _Refused("event_type", f"{event['event_type']} is not allowed for this write key",
                                   "type_not_allowed")
                # a channel that is not even a string is left to send()'s validation, which names the rule
                if type(event["channel"]) is str and event["channel"] not in key.channels:
                    raise _Refused("channel", f"{event['channel']} is not allowed for this write key",
                                   "channel_not_allowed")
                send(event, acks)
            except ValidationError as exc:
                refused.append((item, exc.field, exc.rule, "invalid", event_type))
            except _Refused as exc:
                refused.append((item, exc.field, exc.rule, exc.reason, event_type))
            except RetryableError as exc:
                return self._unavailable(str(exc), cors)
            else:
                accepted[event["event_type"]] = accepted.get(event["event_type"], 0) + 1
        rejected: list[dict[str, Any]] = []
        try:
            for item, field, rule, reason, event_type in refused:
                rejected.append(self._refuse(item, field, rule, reason, event_type, source, acks))
            await acks.wait(self.settings.collector_ack_timeout_seconds)
        except RetryableError as exc:
            return self._unavailable(str(exc), cors)
        except NotAcknowledged as exc:
            log.warning("request answered 503: %s", exc)  # the detail (topics, broker errors) stays in the log
            return self._unavailable("Kafka did not acknowledge every event", cors)
        for event_type, count in accepted.items():
            COLLECTOR_EVENTS_ACCEPTED.labels(event_type).inc(count)
        total = sum(accepted.values())
        status = 200 if not rejected else (207 if total else 400)
        return _json(status, {"accepted": total, "rejected": rejected}, cors)

    def _refuse(self, item: Item, field: str, rule: str, reason: str, event_type: object, source: str,
                acks: Acks) -> dict[str, Any]:
        """Count a refused item, queue its original bytes on the dead-letter topic, and say why (index, field, rule)."""
        rule = rule if len(rule) <= 300 else rule[:300] + "..."
        label = event_type if isinstance(event_type, str) and event_type in _EVENT_TYPES else "unknown"
        COLLECTOR_EVENTS_REJECTED.labels(label, reason).inc()
        self.delivery.dead_letter(item.raw, f"[{item.index}] {field}: {rule}", item.index, source, acks)
        return {"index": item.index, "field": field, "rule": rule}

    def _unavailable(self, why: str, cors: dict[str, str]) -> web.Response:
        retry = str(self.settings.collector_retry_after_seconds)
        return _json(503, {"error": f"{why}; nothing was accepted: retry the whole request after {retry}s"},
                     {**cors, "Retry-After": retry})

    async def preflight(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if origin is None or not self.origins.allows(origin):
            return _json(403, {"error": "origin not allowed"})
        return web.Response(status=204, headers=self.origins.preflight_headers(origin))

    # --- the rest ------------------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "up"})

    async def readyz(self, request: web.Request) -> web.Response:
        if self.delivery.ready:
            return _json(200, {"ready": True})
        return _json(503, {"ready": False, "error": f"Kafka at {self.settings.bootstrap_servers} does not answer, or "
                                                    f"the topics {self.settings.events_topic} and "
                                                    f"{self.settings.dead_letter_topic} do not exist "
                                                    "(`touchpoint topics create`)"})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi_json(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi, content_type="application/json")

    async def tracker_js(self, request: web.Request) -> web.Response:
        return web.Response(body=self.tracker, content_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


class _Refused(Exception):
    def __init__(self, field: str, rule: str, reason: str) -> None:
        super().__init__(rule)
        self.field, self.rule, self.reason = field, rule, reason




def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json",
                        headers=headers)


def _write_key(request: web.Request) -> str | None:
    """The key from basic auth (user part), the X-Touchpoint-Key header, or the writeKey query parameter."""
    auth = request.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return request.headers.get(KEY_HEADER) or request.query.get(KEY_QUERY) or None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _count(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path if request.path in _ROUTES else "other"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        COLLECTOR_REQUESTS.labels(path, str(exc.status)).inc()
        raise
    COLLECTOR_REQUESTS.labels(path, str(response.status)).inc()
    return response


COLLECTOR_KEY = web.AppKey("collector", Collector)


def create_app(settings: Settings, delivery: Delivery | None = None, keys: KeyStore | None = None) -> web.Application:
    """The application; the Kafka side starts with the app and is flushed when it stops (after in-flight requests)."""
    keys = keys or KeyStore(settings.collector_keys_file)  # a broken keys file fails before Kafka is touched
    collector = Collector(settings, delivery or Delivery(settings), keys)
    app = web.Application(middlewares=[_count], client_max_size=settings.collector_max_request_bytes + 1)
    app[COLLECTOR_KEY] = collector
    app.router.add_post("/v1/batch", collector.batch)
    app.router.add_route("OPTIONS", "/v1/batch", collector.preflight)
    app.router.add_get("/healthz", collector.healthz)
    app.router.add_get("/readyz", collector.readyz)
    app.router.add_get("/metrics", collector.metrics)
    app.router.add_get("/openapi.json", collector.openapi_json)
    app.router.add_get("/touchpoint.js", collector.tracker_js)

    async def start_kafka(app: web.Application) -> None:
        collector.delivery.start()

    async def flush_kafka(app: web.Application) -> None:
        left = await collector.delivery.close(settings.collector_shutdown_seconds)
        if left:
            log.error("%d record(s) undelivered at shutdown; their requests were answered 503", left)

    app.on_startup.append(start_kafka)
    app.on_cleanup.append(flush_kafka)
    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          print_line: Callable[[str], None] = print) -> None:
    """Run until SIGINT/SIGTERM: stop accepting, let in-flight requests finish (up to collector_shutdown_seconds),
    then flush the producer.

    "In flight" means received: a request whose body is still arriving when the signal comes is dropped without
    an answer (aiohttp stops reading at shutdown), so its client, which saw no 2xx, retries it elsewhere.
    """
    app = create_app(settings)
    host = host or settings.metrics_host
    port = settings.collector_port if port is None else port
    print_line(f"collector on http://{host}:{port}/v1/batch (tracker /touchpoint.js, docs /openapi.json)")
    # keepalive_timeout also bounds a connection whose request headers never complete (slowloris): aiohttp
    # closes a connection that has no request in progress after it, whether idle or trickling header bytes.
    web.run_app(app, host=host, port=port, shutdown_timeout=settings.collector_shutdown_seconds,
                keepalive_timeout=settings.collector_read_timeout_seconds, print=None, access_log=None,
                handle_signals=True)
