"""Issue 14: no hot item. A campaign's counts live on counter shards (adapters/counters), counted in
the same transaction as what they count; its content lives on an item per version, read once per
worker container; its record stays small. Measured with the runtime's meter (DynamoDB's rules)."""

import json

import pytest
from botocore.exceptions import ClientError

from bulkmail.adapters import counters, dynamo
from bulkmail.adapters.campaigns import content_id
from bulkmail_local.bench import SAMPLE_NEWSLETTER
from bulkmail_local.runtime.metering import Meter
from bulkmail_local.runtime.stack import ACCOUNT, REGION
from tests.integration.test_worker import people


def dynamo_key(campaign_id: str) -> str:
    return json.dumps({"campaign_id": {"S": campaign_id}}, sort_keys=True)


def test_counts_go_to_the_shards_and_readers_sum_them(harness):
    h = harness
    table = h.rt.physical["CampaignsTable"]
    c = h.add_campaign(total=0)
    for n in range(40):
        counters.add(table, c["campaign_id"], {"sent_count": 1, "opened_count": 2}, key=f"batch-{n}", now_iso="t")
    shards = {counters.shard_of(f"batch-{n}") for n in range(40)}
    assert len(shards) > counters.SHARDS // 2  # spread, not one hot item
    record = h.campaigns.get(c["campaign_id"])
    assert (record["sent_count"], record["opened_count"]) == (40, 80)
    assert h.campaigns.head(c["campaign_id"])["sent_count"] == 0  # the record itself is not written
    assert counters.totals(table, ["nobody"]) == {"nobody": {}}


def test_a_count_in_a_cancelled_transaction_counts_nothing(harness):
    h = harness
    table = h.rt.physical["CampaignsTable"]
    c = h.add_campaign(total=0)
    guard = {
        "ConditionCheck": {
            "TableName": table,
            "Key": {"campaign_id": c["campaign_id"]},
            "ConditionExpression": "attribute_not_exists(campaign_id)",  # it exists: the transaction fails
        }
    }
    entry = counters.add_entry(table, c["campaign_id"], {"sent_count": 5}, key="b", now_iso="t")
    with pytest.raises(ClientError):
        dynamo.client().transact_write_items(TransactItems=[guard, entry])
    assert h.campaigns.get(c["campaign_id"])["sent_count"] == 0
    dynamo.client().transact_write_items(TransactItems=[entry])
    assert h.campaigns.get(c["campaign_id"])["sent_count"] == 5


def test_a_60_kb_campaigns_batches_write_small_items_and_read_its_content_once(harness):
    h = harness
    h.add_contacts(people(6))
    c = h.add_campaign(total=6, body_html=SAMPLE_NEWSLETTER.read_text())
    assert "body_html" not in h.campaigns.head(c["campaign_id"])  # the record is small: content apart
    meter = Meter(ACCOUNT, REGION, counts=lambda: True)
    h.rt.meter = meter
    for n in range(3):
        h.enqueue(c["campaign_id"], f"p0-{n}", [f"person{2 * n}@example.org", f"person{2 * n + 1}@example.org"])
    h.drain()
    h.rt.meter = None
    record = h.campaigns.get(c["campaign_id"])
    assert (record["sent_count"], record["processed_count"]) == (6, 6)
    # Each sent email: its ledger row (1 unit). Per batch: a counter shard and the batch's claim and
    # release (1-2 units each). The record and the 60 KB content item: not written at all.
    (_table, _key), busiest = meter.busiest_item()
    assert busiest <= 4, meter.item_writes.most_common(3)
    by_key = {key: units for (_t, key), units in meter.item_writes.items()}
    record_key = dynamo_key(c["campaign_id"])
    assert by_key.get(record_key, 0) <= 1  # queued → processing, once (one unit: the record is small)
    assert dynamo_key(content_id(c["campaign_id"], 1)) not in by_key
    rows = [k for k in by_key if "person" in k]
    assert len(rows) == 6 and all(by_key[k] == 1 for k in rows)  # one write per email, never rewritten
    content_units = 15  # 60 KB, read consistently: ceil(60 KB / 4 KB)
    # Three batches: three reads of the small record (1 unit each) and one of the content.
    assert meter.table_reads[h.rt.physical["CampaignsTable"]] < 2 * content_units


def test_an_edit_is_a_new_content_version_that_the_next_batch_reads(harness):
    h = harness
    c = h.add_campaign(total=0)
    cid = c["campaign_id"]
    assert h.campaigns.edit(cid, {"subject": "New {{first_name}}", "campaign_name": "Renamed"}, ("queued",), "t")
    record = h.campaigns.get(cid)
    assert (record["subject"], record["campaign_name"]) == ("New {{first_name}}", "Renamed")
    assert record["content_version"] == 2
    assert record["body"] == c["body"]  # what was not edited is carried into the new version
    assert h.campaigns.content(cid, 1)["subject"] == c["subject"]  # an old version stays as it was
    assert not h.campaigns.edit(cid, {"subject": "x"}, ("paused",), "t")  # not in an editable status
    assert h.campaigns.head(cid)["content_version"] == 2
    assert dynamo.table(h.campaigns.table_name).get_item(Key={"campaign_id": content_id(cid, 3)}).get("Item") is None
    with pytest.raises(ValueError, match="content version"):
        h.campaigns.update_fields(cid, {"body": "sneaked onto the record"})
