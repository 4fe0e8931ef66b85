"""touchpoint.schemas: the Avro contracts between the stages, and the code that speaks them.

- ``registry``: every version under ``schemas/avro/<name>/v<N>.avsc``, indexed by CRC-64-AVRO fingerprint;
- ``codec``: ``AvroCodec`` (single-object or Confluent framing; decoding resolves writer to reader schema);
- ``validation``: ``validate_event`` (the contract's rules, per event, fast);
- ``json_shape``: ``event_from_json`` / ``event_to_json`` (the JSON shape the CLI accepts);
- ``compat``: backward-compatibility check and published-versions lock (``touchpoint schemas check``).

See ``schemas/README.md`` for every field, the wire format and the evolution rules.
"""

from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.json_shape import event_from_json, event_to_json
from touchpoint.schemas.registry import LocalRegistry, SchemaVersion, get_registry
from touchpoint.schemas.validation import validate_event, validate_record

__all__ = [
    "AvroCodec",
    "LocalRegistry",
    "SchemaVersion",
    "event_from_json",
    "event_to_json",
    "get_registry",
    "validate_event",
    "validate_record",
]
