"""The sink's part of an erasure (``touchpoint.privacy``): drop erased ids' records, delete their stored rows, audit.

Steps when new erasure records arrive (``SinkLoop`` calls :meth:`Eraser.poll` between batches), in order:

1. flush the open batches (rows accepted before the erasure was known are stored, so step 3 finds them);
2. for an erased customer, find the anonymous ids stitched to it (``identity_merges``) and publish erasure records
   for them too (same request id), so the worker forgets and suppresses them as well;
3. count, then delete the rows of every erased id from ``touchpoints``, ``journeys`` (owner or one of its
   anonymous ids) and ``identity_merges`` with lightweight ``DELETE``s: the rows disappear from every query and
   view at once; their bytes leave the disk when ClickHouse next merges those parts (in the background, usually
   within hours; ``OPTIMIZE TABLE ... FINAL`` forces it);
4. insert one audit row per request into ``privacy_erasures`` (counts only).

From then on :meth:`blocks` drops records of erased ids before they are inserted (in-flight events, snapshots the
worker built before it saw the erasure, a replay of the topics). Metric windows are kept: they hold no ids.
Idempotent: erasing again deletes nothing more and audits zero rows; a crash between 3 and 4 loses only the audit
row of that pass (rerun the erase to record one).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from touchpoint import privacy
from touchpoint.privacy import ErasureRequest, SuppressionList

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5


def _literal(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values) + "]"


class Eraser:
    """Follows the suppression list for one sink; see the module docstring."""

    def __init__(self, settings: Any, store: Any) -> None:
        self.settings = settings
        self.store = store
        self.suppression = SuppressionList(settings)
        self._next_poll = 0.0

    def start(self) -> None:
        """Read the whole list, and apply it to the store once (a sink may have been down during an erase); audit
        rows only for requests that still removed something, so restarts do not repeat empty ones."""
        requests = self.suppression.load()
        if requests:
            self.erase(requests, audit_empty=False)

    def blocks(self, table: str, record: dict[str, Any]) -> bool:
        ids = self.suppression.ids
        if not ids:
            return False
        if record.get("customer_id") in ids or record.get("anonymous_id") in ids:
            return True
        return table == "journeys" and any(a in ids for a in record.get("anonymous_ids") or ())

    def due(self, now: float) -> bool:
        return now >= self._next_poll

    def poll(self) -> list[ErasureRequest]:
        self._next_poll = time.monotonic() + POLL_INTERVAL_S
        return self.suppression.poll()

    def erase(self, requests: list[ErasureRequest], *, audit_empty: bool = True) -> None:
        """Steps 2-4 of the module docstring for the records read (step 1 is the caller's)."""
        by_request: dict[str, list[str]] = defaultdict(list)
        meta: dict[str, ErasureRequest] = {}
        for request in requests:
            by_request[request.request_id].extend(request.ids)
            meta[request.request_id] = request
        db = self.store.database
        for request_id, ids in by_request.items():
            stitched = [row[0] for row in self.store.query_rows(
                f"SELECT DISTINCT anonymous_id FROM {db}.identity_merges WHERE customer_id IN {_literal(ids)}")]
            more = [a for a in stitched if a and a not in self.suppression.ids]
            if more:
                first = meta[request_id]
                privacy.publish(self.settings, ErasureRequest(request_id, tuple(more), first.requested_at,
                                                              first.requested_by))
                self.suppression.ids.update(more)
            everyone = _literal(list(dict.fromkeys(ids + stitched)))
            where = {
                "touchpoints": f"customer_id IN {everyone} OR anonymous_id IN {everyone}",
                "journeys": f"customer_id IN {everyone} OR hasAny(anonymous_ids, {everyone})",
                "identity_merges": f"customer_id IN {everyone} OR anonymous_id IN {everyone}",
            }
            removed = {}
            for table, condition in where.items():
                removed[table] = int(self.store.query_rows(f"SELECT count() FROM {db}.{table} WHERE {condition}")[0][0])
                if removed[table]:
                    self.store.command(f"DELETE FROM {db}.{table} WHERE {condition}")
            request = meta[request_id]
            if not audit_empty and not any(removed.values()):
                continue
            self.store.insert(
                "privacy_erasures",
                [[request_id], [datetime.fromtimestamp(request.requested_at / 1000, tz=timezone.utc)],
                 [request.requested_by], [datetime.now(tz=timezone.utc)], [len(ids)],
                 [removed["touchpoints"]], [removed["journeys"]], [removed["identity_merges"]]],
                ["request_id", "requested_at", "requested_by", "erased_at", "ids", "touchpoints_removed",
                 "journeys_removed", "merges_removed"],
            )
            log.warning("erasure %s: removed %d touchpoints, %d journey rows, %d identity merges of %d ids",
                        request_id, removed["touchpoints"], removed["journeys"], removed["identity_merges"],
                        len(ids) + len(more))

    def close(self) -> None:
        self.suppression.close()
