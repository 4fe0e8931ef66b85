"""The worker's part of an erasure (``touchpoint.privacy``): follow the suppression list, forget erased ids' state.

Every ``SWEEP_INTERVAL_S`` the list is polled; then, when the tables are not being recovered or rebalanced, every
erased id not yet swept since the last rebalance is forgotten on the partitions this worker holds: its alias
(identity table), its journey state with its journeys and dedup entries (journey table, changelog tombstones), and
its journey ids on the compacted journeys topic (tombstones). The steps drop erased ids' events themselves
(``SuppressionList.blocks``), so nothing re-creates the state. After a restart or rebalance the sweep runs again over
every erased id, so a worker killed halfway through forgets the rest when it is back. Aggregated metric windows
keep their counts: they hold no ids.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from touchpoint.streams import internal
from touchpoint.streams.app import WorkerContext
from touchpoint.streams.topology import identity_topic, journey_topic

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 0.5


class Forgetter:
    def __init__(self, app: faust.App, ctx: WorkerContext, identities: Any, journeys: Any) -> None:
        self.app = app
        self.ctx = ctx
        self.identities = identities
        self.journeys = journeys
        self.partition_for = internal.Partitioner(ctx.settings.topic_partitions)
        self.identity_topic = identity_topic(ctx.settings)
        self.journey_topic = journey_topic(ctx.settings)
        self.swept: set[str] = set()

    def held(self) -> tuple[set[int], set[int]]:
        assignment = self.app.consumer.assignment()
        return ({tp.partition for tp in assignment if tp.topic == self.identity_topic},
                {tp.partition for tp in assignment if tp.topic == self.journey_topic})

    def sweep(self) -> int:
        """Forget every erased id not swept yet on the held partitions; returns how many values were deleted."""
        suppression = self.ctx.suppression
        if suppression is None:
            return 0
        suppression.poll()
        todo = suppression.ids - self.swept
        if not todo or self.app.rebalancing or self.app.in_recovery:
            return 0
        identity_held, journey_held = self.held()
        deleted = 0
        for subject in todo:
            p = self.partition_for(subject)
            if p in identity_held and self.identities.forget(subject, p):
                deleted += 1
            if p in journey_held and self.journeys.forget(subject, p):
                deleted += 1
        self.swept |= todo
        if deleted:
            log.warning("erasure: forgot %d alias/journey states of %d erased ids", deleted, len(todo))
        return deleted


def register(app: faust.App, ctx: WorkerContext, identities: Any, journeys: Any) -> Forgetter:
    forgetter = Forgetter(app, ctx, identities, journeys)

    @app.timer(SWEEP_INTERVAL_S)
    async def sweep_erasures() -> None:
        forgetter.sweep()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # faust stubs reject async receivers
    async def _rebalanced(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        forgetter.swept.clear()  # partitions moved: sweep every erased id again on what is held now

    return forgetter
