"""Mutual TLS: a listener that requires client certificates accepts ours and refuses a client without one, quickly
and naming the setting."""

from __future__ import annotations

import time

import pytest

from tests.helpers import run_cli
from tests.integration.security.conftest import SecureBroker

pytestmark = pytest.mark.slow


def test_client_certificate_is_used_and_required(mtls_broker: SecureBroker, unique: str) -> None:
    env = {**mtls_broker.env(), "TOUCHPOINT_TOPIC_PREFIX": f"tp{unique}"}
    with_cert = {**env, "TOUCHPOINT_KAFKA_SSL_CERTIFICATE_LOCATION": str(mtls_broker.tls.client_cert),
                 "TOUCHPOINT_KAFKA_SSL_KEY_LOCATION": str(mtls_broker.tls.client_key)}
    created = run_cli("topics", "create", env=with_cert)
    assert created.returncode == 0, created.stdout + created.stderr
    began = time.monotonic()
    refused = run_cli("topics", "list", env=env, timeout=60)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "TOUCHPOINT_KAFKA_SSL_CERTIFICATE_LOCATION" in output, output
    assert time.monotonic() - began < 20 and "Traceback" not in output
