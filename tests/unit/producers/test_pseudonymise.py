"""Pseudonymisation at the source: configured fields become HMAC-SHA256 before encoding, deterministically."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import free_port
from touchpoint.config import load_settings
from touchpoint.errors import ConfigError
from touchpoint.producers import TouchpointProducer
from touchpoint.producers.pseudonymise import Pseudonymiser
from touchpoint.schemas.examples import example_event

KEY = "k" * 32


def test_the_pseudonym_is_hmac_sha256_as_in_rfc_4231() -> None:
    # RFC 4231 test case 6: 131-byte key 0xaa, data "Test Using Larger Than Block-Size Key - Hash Key First".
    p = Pseudonymiser(b"\xaa" * 131, ["customer_id"])
    out = p({"customer_id": "Test Using Larger Than Block-Size Key - Hash Key First"})
    assert out["customer_id"] == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_configured_fields_are_replaced_others_kept_and_the_input_untouched() -> None:
    p = Pseudonymiser(KEY.encode(), ["customer_id", "anonymous_id", "context.email", "payload.comment"])
    event: dict[str, Any] = {"customer_id": "c-1", "anonymous_id": None, "session_id": "s-1",
                             "context": {"email": "ana@example.com", "country": "BR"},
                             "payload": {"comment": "call me on +55 11 99999-0000", "score": 9}}
    out = p(event)
    assert out["anonymous_id"] is None and out["session_id"] == "s-1"
    assert out["context"]["country"] == "BR" and out["payload"]["score"] == 9
    for value in (out["customer_id"], out["context"]["email"], out["payload"]["comment"]):
        assert len(value) == 64 and set(value) <= set("0123456789abcdef")
    assert event["customer_id"] == "c-1" and event["context"]["email"] == "ana@example.com"  # not mutated


def test_the_same_id_gets_the_same_pseudonym_in_every_field_so_stitching_still_matches() -> None:
    p = Pseudonymiser(KEY.encode(), ["customer_id", "anonymous_id"])
    first = p({"customer_id": None, "anonymous_id": "a-42"})
    login = p({"customer_id": "c-7", "anonymous_id": "a-42"})
    assert first["anonymous_id"] == login["anonymous_id"] != "a-42"
    assert Pseudonymiser(b"another key of 16+ bytes", ["anonymous_id"])({"anonymous_id": "a-42"}) != first


@pytest.mark.parametrize("fields, key, message", [
    ("event_id", KEY, "'event_id' cannot be pseudonymised"),
    ("context", KEY, "'context' cannot be pseudonymised"),
    ("customer_id", None, "TOUCHPOINT_PSEUDONYMISE_KEY"),
    ("customer_id", "short", "at least 16 bytes"),
])
def test_bad_configuration_is_refused_naming_the_setting(fields: str, key: str | None, message: str) -> None:
    settings = load_settings(pseudonymise_fields=fields, pseudonymise_key=key)
    with pytest.raises(ConfigError, match=message):
        Pseudonymiser.from_settings(settings)


def test_no_fields_configured_means_no_pseudonymiser() -> None:
    assert Pseudonymiser.from_settings(load_settings(pseudonymise_key=KEY)) is None


def test_the_producer_sends_no_raw_value_of_a_configured_field(tmp_path: Any) -> None:
    settings = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", pseudonymise_key=KEY,
                             pseudonymise_fields="customer_id,anonymous_id,context.email")
    sent: list[tuple[bytes, str]] = []

    class Recorder:
        def produce(self, topic: str, value: bytes, key: str, **kwargs: Any) -> None:
            sent.append((value, key))

        def poll(self, timeout: float = 0) -> int:
            return 0

    producer = TouchpointProducer(settings, topic="offline", config={"log_level": 0})
    real = producer._kafka
    producer._kafka = Recorder()  # type: ignore[assignment]
    event = dict(example_event("PAGE_VIEW"), customer_id="c-raw-customer", anonymous_id="a-raw-visitor",
                 context={"email": "raw@example.com", "country": "BR"})
    producer.send(event)
    producer.send_many([event])
    producer._kafka = real
    assert len(sent) == 2
    for value, key in sent:
        for raw in (b"c-raw-customer", b"a-raw-visitor", b"raw@example.com"):
            assert raw not in value and raw.decode() not in key
        assert b"BR" in value  # what is not configured is sent as it was
