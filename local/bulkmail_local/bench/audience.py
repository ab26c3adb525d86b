"""`bulkmail bench audience`: the read units of a segment campaign's audience, on the metering runtime.

A table of N generated contacts; M of them (spread through the table) are on one list, and K of those
match the segment's condition. One campaign to the segment runs whole; the meter counts what the
workflow's functions read from the contacts table and the audience index: PersistCampaign (the
recipient estimate) and AdvanceCampaign (the fan-out's pages). Capacity is priced by DynamoDB's
rules (runtime/metering.py). For comparison, what one Scan of the whole contacts table costs (the
fan-out before the index read the table once for the estimate and once for the pages).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.contact_import import normalise_contacts
from bulkmail_local.bench.campaigns import BENCH_PARAMETERS, bench_campaign
from bulkmail_local.demo import generated_contacts
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.lambdas import current_function
from bulkmail_local.runtime.metering import Meter, item_size
from bulkmail_local.runtime.stack import ACCOUNT, REGION

AUDIENCE_FUNCTIONS = ("PersistCampaignFunction", "AdvanceCampaignFunction")


class AudienceMeter(Meter):
    """A Meter of the workflow's reads of the contacts table and the audience index, by function."""

    def __init__(self, tables: tuple[str, ...]):
        super().__init__(ACCOUNT, REGION, counts=lambda: current_function() in AUDIENCE_FUNCTIONS)
        self.tables = tables
        self.read_by_function: dict[str, float] = {}

    def record(self, event_name: str, request, response) -> None:
        if not self.counts() or not event_name.startswith("before-send.dynamodb."):
            return
        params = json.loads(request.body or b"{}")
        names = {params.get("TableName"), *params.get("RequestItems", {})}
        if not names & set(self.tables):
            return
        before = self.capacity["read"]
        super().record(event_name, request, response)
        name = str(current_function())
        self.read_by_function[name] = self.read_by_function.get(name, 0.0) + self.capacity["read"] - before


def _contacts(n: int, members: int, matching: int) -> list[dict[str, Any]]:
    """n contacts; every (n // members)-th is on list "target", and the first `matching` of those are "pro"."""
    step = max(1, n // members)
    people = []
    for i, person in enumerate(generated_contacts(n)):
        on = i % step == 0 and i // step < members
        plan = "pro" if on and i // step < matching else "free"
        people.append({**person, "lists": ["target"] if on else ["other"], "attributes": {"plan": plan}})
    return people


def bench_audience(contacts: int, members: int, matching: int, outbox: Path) -> dict[str, Any]:
    with EmbeddedRuntime(outbox=outbox, parameters=BENCH_PARAMETERS) as rt:
        tables = (rt.physical["ContactsTable"], rt.physical["AudienceTable"])
        store = ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"])
        items, _ = normalise_contacts(_contacts(contacts, members, matching))
        store.put_many(items)
        meter = AudienceMeter(tables)
        rt.meter = meter
        campaign_id = f"bench_audience_{int(time.time())}"
        audience = {"lists": ["target"], "match": [{"field": "plan", "op": "eq", "value": "pro"}]}
        started = time.monotonic()
        # The sample newsletter, to the segment instead of the list every generated contact is on.
        campaign = {**bench_campaign(), "campaign_id": campaign_id, "audience": audience}
        del campaign["list"]
        arn = rt.start_campaign(campaign)
        execution = rt.wait_for_execution(arn, timeout=600)
        rt.meter = None
        record = CampaignStore(rt.physical["CampaignsTable"]).get(campaign_id)
        scan_bytes = sum(item_size(i) for i in rt.client("dynamodb").scan(TableName=tables[0])["Items"])
        scan_bytes += _rest_of_scan(rt, tables[0])
    reads = meter.read_by_function
    return {
        "contacts": contacts,
        "list_members": members,
        "segment_members": matching,
        "sent": int(record["sent_count"]),
        "total_contacts": int(record["total_contacts"]),
        "status": record["status"],
        "execution": execution["status"],
        "seconds": round(time.monotonic() - started, 2),
        "audience_read_units": round(sum(reads.values()), 1),
        "read_units_by_function": {k: round(v, 1) for k, v in sorted(reads.items())},
        "requests": dict(sorted(meter.requests.items())),
        "full_table_scan_read_units": math.ceil(scan_bytes / 4096) / 2,
    }


def _rest_of_scan(rt: EmbeddedRuntime, table: str) -> int:
    """The bytes of the table past the first Scan page (a Scan answers at most 1 MB a page)."""
    client, total = rt.client("dynamodb"), 0
    page = client.scan(TableName=table, Select="ALL_ATTRIBUTES")
    for _ in range(100_000):
        if "LastEvaluatedKey" not in page:
            return total
        page = client.scan(TableName=table, ExclusiveStartKey=page["LastEvaluatedKey"])
        total += sum(item_size(i) for i in page["Items"])
    raise RuntimeError("the table took more than 100,000 Scan pages")
