"""The collector's OpenAPI 3.0 document, served at ``/openapi.json`` (and fuzzed against by schemathesis)."""

from __future__ import annotations

from typing import Any

from touchpoint.config import Settings
from touchpoint.producers.builders import Channel, EventType


def _error(description: str, *, limit: bool = False, retry: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {"error": {"type": "string"}}
    if limit:
        properties["limit"] = {"type": "string", "enum": ["max_event_bytes", "max_request_bytes", "max_events"]}
        properties["max"] = {"type": "integer"}
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": properties}}},
    }
    if retry:
        out["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying the whole request.",
                                          "schema": {"type": "integer"}}}
    return out


def document(settings: Settings) -> dict[str, Any]:
    """The document, with the configured limits written into it."""
    event = {
        "type": "object",
        "description": "A touchpoint in the documented JSON shape (schemas/README.md). `source` is set from the write "
                       "key; send `event_id` (a UUID) so that retries are deduplicated.",
        "required": ["event_type", "occurred_at", "payload"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "event_type": {"type": "string", "enum": [t.value for t in EventType]},
            "occurred_at": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]},
            "customer_id": {"type": "string", "nullable": True},
            "anonymous_id": {"type": "string", "nullable": True},
            "channel": {"type": "string", "enum": [c.value for c in Channel]},
            "session_id": {"type": "string", "nullable": True},
            "context": {"type": "object", "additionalProperties": {"type": "string"}},
            "payload": {"type": "object"},
        },
    }
    result = {
        "type": "object",
        "required": ["accepted", "rejected"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "array", "items": {
                "type": "object", "required": ["index", "field", "rule"],
                "properties": {"index": {"type": "integer"}, "field": {"type": "string"}, "rule": {"type": "string"}},
            }},
        },
    }
    json_result = {"application/json": {"schema": result}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "touchpoint collector",
            "version": "1",
            "description": (
                "Touchpoints over HTTP. A 2xx means every accepted event was acknowledged by Kafka (acks=all). "
                f"Limits: {settings.collector_max_event_bytes} bytes per event, {settings.collector_max_request_bytes} "
                f"bytes per request (after gzip), {settings.collector_max_events} events per request."
            ),
        },
        "components": {"securitySchemes": {
            "basic": {"type": "http", "scheme": "basic", "description": "The write key as the user, no password."},
            "header": {"type": "apiKey", "in": "header", "name": "X-Touchpoint-Key"},
            "query": {"type": "apiKey", "in": "query", "name": "writeKey",
                      "description": "For browsers (sendBeacon cannot set headers)."},
        }},
        "paths": {
            "/v1/batch": {
                "post": {
                    "summary": "Send one event, a JSON array of events, or JSON Lines (gzip accepted).",
                    "security": [{"basic": []}, {"header": []}, {"query": []}],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": {"oneOf": [event, {"type": "array", "items": event, "minItems": 1,
                                                                              "maxItems": settings.collector_max_events}]}},
                        "text/plain": {"schema": {"type": "string"}},
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    }},
                    "responses": {
                        "200": {"description": "Every event accepted and acknowledged by Kafka.", "content": json_result},
                        "207": {"description": "Some events accepted (acknowledged by Kafka), the others refused: listed "
                                               "with index, field and rule, and sent to the dead-letter topic.",
                                "content": json_result},
                        "400": {"description": "Nothing accepted: the body is malformed (`error`), or every event was "
                                               "refused (`rejected`).",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        "401": _error("Missing, unknown or revoked write key."),
                        "403": _error("The request's Origin is not allowed."),
                        "408": _error("The body did not arrive within the read timeout."),
                        "413": _error("A limit was broken; `limit` names it and `max` is its value.", limit=True),
                        "415": _error("Unsupported content type."),
                        "503": _error("Kafka is unreachable, too slow or the queue is full: nothing to rely on, retry the "
                                      "whole request after Retry-After seconds (event ids make it safe).", retry=True),
                    },
                },
            },
            "/touchpoint.js": {"get": {"summary": "The browser tracker.", "responses": {
                "200": {"description": "JavaScript", "content": {"application/javascript": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": {
                "200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {
                "200": {"description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {"summary": "The process is up.", "responses": {
                "200": {"description": "up", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/readyz": {"get": {"summary": "Kafka answers and the topics exist (send traffic only then).", "responses": {
                "200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object"}}}},
                "503": {"description": "Kafka does not answer", "content": {"application/json": {"schema": {"type": "object"}}}},
            }}},
        },
    }
