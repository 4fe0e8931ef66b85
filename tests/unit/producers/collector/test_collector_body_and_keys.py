"""The collector's pure parts: splitting bodies within the limits, write-key files, origins."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from touchpoint.errors import ConfigError
from touchpoint.producers.collector.body import BodyError, Limits, split_items
from touchpoint.producers.collector.cors import OriginPolicy
from touchpoint.producers.collector.keys import KeyStore, parse_keys

LIMITS = Limits(max_event_bytes=100, max_request_bytes=1000, max_events=5)


def test_an_array_keeps_each_items_original_bytes():
    body = b'[ {"a": 1},\n {"b": "\xc3\xa9"} , 7 ]'
    items = split_items(body, "application/json", LIMITS)
    assert [i.raw for i in items] == [b'{"a": 1}', b'{"b": "\xc3\xa9"}', b"7"]
    assert [i.obj for i in items] == [{"a": 1}, {"b": "é"}, 7]
    assert [i.index for i in items] == [0, 1, 2]


def test_one_object_and_text_plain_are_one_item():
    assert [i.obj for i in split_items(b' {"a": 1} ', "text/plain", LIMITS)] == [{"a": 1}]


def test_json_lines_refuse_bad_lines_one_by_one():
    items = split_items(b'{"a": 1}\n\nnot json\r\n{"b": 2}\n', "application/x-ndjson", LIMITS)
    assert [(i.index, i.raw, i.error is None) for i in items] == [
        (0, b'{"a": 1}', True), (1, b"not json", False), (2, b'{"b": 2}', True)]


@pytest.mark.parametrize("body", [b"[{", b'{"a": 1} {"b": 2}', b"[1 2]", b"[1,]", b"[1] x", b"\xff"])
def test_malformed_json_is_400(body):
    with pytest.raises(BodyError) as err:
        split_items(body, "application/json", LIMITS)
    assert err.value.status == 400


@pytest.mark.parametrize("body", [b"", b"  ", b"[]"])
def test_an_empty_body_is_400(body):
    with pytest.raises(BodyError) as err:
        split_items(body, "application/json", LIMITS)
    assert err.value.status == 400 and "no event" in err.value.message


@pytest.mark.parametrize(
    ("body", "limit", "value"),
    [
        (b"[" + b",".join([b"1"] * 6) + b"]", "max_events", 5),
        (b'[1, "' + b"x" * 120 + b'"]', "max_event_bytes", 100),
        (b'"' + b"x" * 1200 + b'"', "max_request_bytes", 1000),
    ],
)
def test_limits_are_413_naming_the_limit(body, limit, value):
    with pytest.raises(BodyError) as err:
        split_items(body, "application/json", LIMITS)
    assert (err.value.status, err.value.body()["limit"], err.value.body()["max"]) == (413, limit, value)


def test_wrong_content_type_is_415():
    with pytest.raises(BodyError) as err:
        split_items(b"{}", "application/x-www-form-urlencoded", LIMITS)
    assert err.value.status == 415


SHA = hashlib.sha256(b"secret-1").hexdigest()


def test_keys_file_gives_source_types_and_channels_and_skips_revoked():
    keys = parse_keys(f'''
[[key]]
source = "shop"
sha256 = "{SHA}"
event_types = ["PAGE_VIEW"]
channels = ["web", "app"]
[[key]]
source = "old"
sha256 = "{hashlib.sha256(b'secret-0').hexdigest()}"
revoked = true
''', "keys.toml")
    assert list(keys) == [SHA]
    assert (keys[SHA].source, keys[SHA].event_types, keys[SHA].channels) == ("shop", {"PAGE_VIEW"}, {"web", "app"})


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('source = "s"\nsha256 = "abc"', "64 lower-case hex"),
        (f'sha256 = "{SHA}"', "`source`"),
        (f'source = "s"\nsha256 = "{SHA}"\nevent_types = ["PAGEVIEW"]', "PAGEVIEW unknown"),
        (f'source = "s"\nsha256 = "{SHA}"\ncolour = 1', "unknown field(s) colour"),
    ],
)
def test_a_bad_keys_entry_names_the_problem(entry, says):
    with pytest.raises(ConfigError, match=None) as err:
        parse_keys("[[key]]\n" + entry, "keys.toml")
    assert says in str(err.value) and "keys.toml key entry #1" in str(err.value)


def test_keys_rotate_without_restart_and_a_broken_file_keeps_the_old_keys(tmp_path: Path):
    path = tmp_path / "keys.toml"
    path.write_text(f'[[key]]\nsource = "shop"\nsha256 = "{SHA}"\n')
    store = KeyStore(path, check_every=0.0)
    assert store.lookup("secret-1") is not None and store.lookup("secret-2") is None
    assert store.lookup(None) is None and store.lookup("") is None
    # same size, same clock tick: the content decides
    path.write_text(f'[[key]]\nsource = "shop"\nsha256 = "{hashlib.sha256(b"secret-2").hexdigest()}"\n')
    assert store.lookup("secret-2") is not None and store.lookup("secret-1") is None
    path.write_text("[[key]\n")  # a typo must not lock everyone out
    assert store.lookup("secret-2") is not None


def test_a_missing_keys_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        KeyStore(tmp_path / "nope.toml")


def test_origins():
    policy = OriginPolicy("https://shop.example, http://127.0.0.1:8000/")
    assert policy.allows(None) and policy.allows("https://shop.example") and policy.allows("http://127.0.0.1:8000")
    assert not policy.allows("https://evil.example") and not policy.allows("null")
    assert OriginPolicy("*").allows("https://anything.example") and not OriginPolicy("").allows("https://a.example")
    assert policy.headers("https://shop.example")["Access-Control-Allow-Origin"] == "https://shop.example"
    assert policy.headers(None) == {}
