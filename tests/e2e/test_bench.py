"""The benchmark's measurements on small campaigns: what it counts is what the design says happens."""

from pathlib import Path

from bulkmail_local.bench.audience import bench_audience
from bulkmail_local.bench.campaigns import bench_seed, bench_size
from bulkmail_local.bench.cost import Deployment, load_prices
from bulkmail_local.runtime.stack import PROJECT_ROOT
from bulkmail_local.runtime.template import load_template


def test_bench_counts_the_requests_of_a_campaign(tmp_path: Path):
    deployment = Deployment.from_template(load_template(PROJECT_ROOT / "template.yaml"))
    r = bench_size(300, tmp_path / "o", load_prices(), deployment)
    assert (r["status"], r["sent"]) == ("completed", 300)
    per_email = r["requests_per_email"]
    messages = 300 / deployment.recipients_per_message
    assert per_email["sesv2.SendEmail"] == 1.0
    # One ledger transaction and one contacts read per message, and one transaction storing the
    # campaign's record and content (the workflow's steps read the counter shards too).
    assert per_email["dynamodb.TransactWriteItems"] == round((messages + 1) / 300, 4)
    assert per_email["dynamodb.BatchGetItem"] >= round(messages / 300, 4)
    # Each sent email's row is written once (1 unit), not rewritten in the transaction (2 more; 3.2 in
    # all before); at 300 emails storing the 60 KB content once (2 × 61 units) adds 0.4 an email.
    assert 1.0 <= r["dynamodb_units_per_email"]["write"] < 2.0
    # The 60 KB newsletter's record and content are not written per batch: no item is hot.
    assert r["busiest_item_write_units_per_email"] <= 0.03, r["busiest_item"]
    assert r["ceiling_emails_per_second"] >= 10_000
    assert r["audience_read_units"] > 0
    w = r["workflow"]
    assert w["pages"] == 1
    assert w["state_transitions"] == w["transitions_fixed"] + 2 * w["steps"] + w["polls"]
    assert w["steps"] >= max(w["pages"], w["polls"] + 1)  # a step per page, and one after each wait
    assert r["lambda_invocations"]["AdvanceCampaignFunction"] == w["steps"]
    # Every sent email is also written down on its own when SES accepts it (the crash window is one
    # email): one PutItem more per email than the 2 % budget this held before; SES stays ≥ 97 %.
    assert per_email["dynamodb.PutItem"] >= 1.0
    assert r["cost_per_million"]["ses"] > 50 * r["cost_per_million"]["non_ses_total"] > 0  # ≤ 2 % of SES


def test_the_seed_design_makes_its_four_requests_per_email(tmp_path: Path):
    seed = bench_seed(60, tmp_path / "o", workers=2)
    assert seed["sent"] == 60
    per_email = seed["requests_per_email"]
    assert (per_email["dynamodb.GetItem"], per_email["dynamodb.UpdateItem"], per_email["sesv2.SendEmail"]) == (2, 1, 1)
    assert per_email["sqs.SendMessageBatch"] == 0.1  # ten references per batch from the API
    assert seed["non_ses_requests_per_email"] > 3


def test_bench_audience_reads_only_the_segment_through_the_index(tmp_path: Path):
    r = bench_audience(contacts=300, members=30, matching=6, outbox=tmp_path / "o")
    assert (r["execution"], r["status"]) == ("SUCCEEDED", "completed"), r
    assert (r["total_contacts"], r["sent"]) == (6, 6)
    # The index reads the list's 30 members, far less than one Scan of the 300 contacts.
    assert 0 < r["audience_read_units"] < r["full_table_scan_read_units"], r
