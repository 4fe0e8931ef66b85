"""The Olist e-commerce sample (``../shared/data/olist-sample``) mapped to touchpoints, for tests on real data.

The files are read from the shared directory, never copied into the project (their license is not ours). The
mapping is deliberately plain so a test can compute its expected figures straight from the CSV files:

| Olist column (orders file order)           | touchpoint                                                        |
|--------------------------------------------|-------------------------------------------------------------------|
| ``order_purchase_timestamp``               | CHECKOUT ``started`` (amount = sum of the order's payments, BRL)  |
| ``order_approved_at`` (status not canceled)| CHECKOUT ``completed`` (payment_method = the first payment's type)|
| ``order_approved_at`` of a canceled order  | CHECKOUT ``failed`` (failure_reason ``canceled``)                 |
| ``order_delivered_carrier_date``           | DELIVERY_NOTICE ``shipped``, promised_by = estimated delivery     |
| ``order_delivered_customer_date``          | DELIVERY_NOTICE ``delivered``, promised_by = estimated delivery   |
| each review (``review_answer_timestamp``)  | SURVEY_RESPONSE CSAT, score = ``review_score``, order_id          |

The customer is the person, ``customer_unique_id``. Olist times carry no zone; they are read as UTC. Event ids are
UUIDv5 of the order (and review) and the step, so producing the file twice is a replay, not new data.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import shared_dir

_NAMESPACE = uuid.UUID("5b0f6a36-6f0e-4c55-9a43-6f6c6973740a")


def olist_dir() -> Path:
    return shared_dir() / "data" / "olist-sample"


def read_csv(name: str) -> list[dict[str, str]]:
    """Rows of ``olist_<name>_dataset.csv`` as dicts, in file order."""
    with open(olist_dir() / f"olist_{name}_dataset.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def iso(olist_time: str) -> str:
    """``2018-06-11 10:25:52`` (no zone in the data) as ISO-8601 UTC text."""
    return olist_time.replace(" ", "T") + "Z"


def _event_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, ":".join(parts)))


@dataclass(frozen=True)
class OlistOrder:
    order_id: str
    person: str
    status: str
    purchased: str
    approved: str
    carrier: str
    delivered: str
    estimated: str
    amount_minor: int
    payment_type: str | None


def orders() -> list[OlistOrder]:
    """Every order in file order, with its person and its payments summed (BRL cents)."""
    person = {row["customer_id"]: row["customer_unique_id"] for row in read_csv("customers")}
    amount: dict[str, int] = {}
    first_type: dict[str, tuple[int, str]] = {}
    for row in read_csv("order_payments"):
        cents = round(float(row["payment_value"]) * 100)
        amount[row["order_id"]] = amount.get(row["order_id"], 0) + cents
        seq = int(row["payment_sequential"])
        if row["order_id"] not in first_type or seq < first_type[row["order_id"]][0]:
            first_type[row["order_id"]] = (seq, row["payment_type"])
    return [
        OlistOrder(
            order_id=row["order_id"], person=person[row["customer_id"]], status=row["order_status"],
            purchased=row["order_purchase_timestamp"], approved=row["order_approved_at"],
            carrier=row["order_delivered_carrier_date"], delivered=row["order_delivered_customer_date"],
            estimated=row["order_estimated_delivery_date"], amount_minor=amount.get(row["order_id"], 0),
            payment_type=first_type[row["order_id"]][1] if row["order_id"] in first_type else None,
        )
        for row in read_csv("orders")
    ]


def touchpoints() -> Iterator[dict[str, Any]]:
    """The sample as touchpoints in the CLI's JSON shape, order by order in file order (then each order's reviews)."""
    reviews: dict[str, list[dict[str, str]]] = {}
    for row in read_csv("order_reviews"):
        reviews.setdefault(row["order_id"], []).append(row)
    for order in orders():
        base = {"customer_id": order.person, "source": "olist", "context": {"country": "BR"}}

        def checkout(status: str, at: str, **extra: Any) -> dict[str, Any]:
            return {**base, "event_id": _event_id(order.order_id, status), "event_type": "CHECKOUT",
                    "occurred_at": iso(at), "channel": "web",
                    "payload": {"order_id": order.order_id, "status": status, "amount_minor": order.amount_minor,
                                "currency": "BRL", "item_count": 1, "payment_method": order.payment_type, **extra}}

        def delivery(status: str, at: str) -> dict[str, Any]:
            return {**base, "event_id": _event_id(order.order_id, status), "event_type": "DELIVERY_NOTICE",
                    "occurred_at": iso(at), "channel": "carrier",
                    "payload": {"order_id": order.order_id, "shipment_id": f"shp-{order.order_id}",
                                "carrier": "olist-logistics", "status": status,
                                "promised_by": iso(order.estimated)}}

        yield checkout("started", order.purchased)
        if order.approved:
            if order.status == "canceled":
                yield checkout("failed", order.approved, failure_reason="canceled")
            else:
                yield checkout("completed", order.approved)
        if order.carrier:
            yield delivery("shipped", order.carrier)
        if order.delivered:
            yield delivery("delivered", order.delivered)
        for review in reviews.get(order.order_id, []):
            yield {**base, "event_id": _event_id(order.order_id, "review", review["review_id"]),
                   "event_type": "SURVEY_RESPONSE", "occurred_at": iso(review["review_answer_timestamp"]),
                   "channel": "email",
                   "payload": {"survey_kind": "CSAT", "score": int(review["review_score"]), "scale_min": 1,
                               "scale_max": 5, "order_id": order.order_id}}


def write_jsonl(path: Path) -> int:
    """Write :func:`touchpoints` as JSON Lines (``touchpoint produce`` input); returns the number of lines."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for event in touchpoints():
            handle.write(json.dumps(event) + "\n")
            count += 1
    return count
