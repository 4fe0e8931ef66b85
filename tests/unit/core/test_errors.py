"""The error tree: callers branch on retryable vs permanent, and errors carry what the dead-letter topic needs."""

from __future__ import annotations

import pytest

from touchpoint.errors import (BrokerUnavailableError, ConfigError, InvalidEventError, PermanentError, RetryableError,
                               StoreUnavailableError, TouchpointError, ValidationError)


@pytest.mark.parametrize(
    ("error", "branch"),
    [(BrokerUnavailableError, RetryableError), (StoreUnavailableError, RetryableError), (ConfigError, PermanentError),
     (ValidationError, PermanentError), (InvalidEventError, PermanentError)],
)
def test_every_error_is_on_exactly_one_branch(error: type[TouchpointError], branch: type[TouchpointError]) -> None:
    other = PermanentError if branch is RetryableError else RetryableError
    assert issubclass(error, branch) and issubclass(error, TouchpointError)
    assert not issubclass(error, other)


def test_validation_error_names_field_and_rule() -> None:
    err = ValidationError("payload.score", "must be within 0..10", value=11)
    assert (err.field, err.rule, err.value) == ("payload.score", "must be within 0..10", 11)
    assert str(err) == "payload.score: must be within 0..10"


def test_invalid_event_error_carries_its_origin() -> None:
    err = InvalidEventError("bad magic byte", topic="tp.events", partition=3, offset=42, kind="undecodable")
    assert (err.topic, err.partition, err.offset, err.kind, err.reason) == ("tp.events", 3, 42, "undecodable",
                                                                             "bad magic byte")
    assert str(err) == "undecodable at tp.events[3]@42: bad magic byte"
    assert str(InvalidEventError("no schema")) == "invalid: no schema"
