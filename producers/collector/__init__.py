"""touchpoint.producers.collector: touchpoints over HTTP (``touchpoint collect``) and the browser tracker.

Websites, apps and services in any language post touchpoints in the documented JSON shape to ``/v1/batch``
(Segment's conventions: write key as the basic-auth user, 32 KB per event, 500 KB per request). Each event is
validated, encoded and produced by the SDK's ``TouchpointProducer``; refused items come back with their index,
field and rule and go to the dead-letter topic with their original bytes.

Guarantee: a 2xx answer means every accepted event was acknowledged by Kafka (acks=all); a 503 means "retry the
whole request" (some events may have landed: they keep their ``event_id`` and the pipeline dedups on it).
"""

from touchpoint.producers.collector.app import create_app, serve
from touchpoint.producers.collector.body import Limits, split_items
from touchpoint.producers.collector.keys import KeyStore, WriteKey, digest, key_entry, new_key

__all__ = ["KeyStore", "Limits", "WriteKey", "create_app", "digest", "key_entry", "new_key", "serve", "split_items"]
