"""The embedded runtime enforces each role of template.yaml (runtime/iam.py): what a role does not
grant fails as on AWS, with AccessDenied naming the action and the resource."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from bulkmail.adapters.contacts import ContactStore
from bulkmail.adapters.ledger import Ledger
from bulkmail.contact_import import normalise_contacts
from bulkmail_local.demo import EVENTS, generated_contacts
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.iam import acting_as
from bulkmail_local.runtime.stack import PROJECT_ROOT
from bulkmail_local.runtime.template import load_template
from tests.waiting import eventually

CONTACTS = 12


def template_without(tmp_path: Path, function: str, action: str) -> Path:
    """A copy of template.yaml whose function's inline statements no longer grant `action`."""
    template = load_template(PROJECT_ROOT / "template.yaml")
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):  # the copy lives elsewhere
            if isinstance(props.get(key), str):
                props[key] = str(PROJECT_ROOT / props[key])
    policies = template["Resources"][function]["Properties"]["Policies"]
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            policy["Statement"] = [s for s in policy["Statement"] if action not in s["Action"]]
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def demo(rt: EmbeddedRuntime, *, until) -> tuple[dict, list[dict]]:
    """The demo campaign to a small generated audience; the campaign record and its ledger rows."""
    items, _ = normalise_contacts(generated_contacts(CONTACTS))
    ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"]).put_many(items)
    campaign = json.loads((EVENTS / "campaign.json").read_text())
    rt.start_campaign({**campaign, "campaign_id": "iam_demo"})
    table = rt.table("CampaignsTable")

    def settled():
        record = table.get_item(Key={"campaign_id": "iam_demo"}, ConsistentRead=True).get("Item") or {}
        return until(record) and record

    record = eventually(settled, "the campaign settled", timeout=120, every=0.1)
    rt.outbox.flush()
    ledger = Ledger(rt.physical["DeliveriesTable"], rt.physical["BatchesTable"], rt.physical["CampaignsTable"])
    return record, ledger.deliveries_for("iam_demo")


def test_the_demo_sends_every_email_with_each_role_enforced(tmp_path):
    with EmbeddedRuntime(outbox=tmp_path / "outbox") as rt:
        assert rt.iam is not None and rt.iam.enforcing
        record, _rows = demo(rt, until=lambda r: r.get("status") == "completed")
        assert (record["sent_count"], record["failed_count"]) == (CONTACTS, 0)
        assert len(list((tmp_path / "outbox" / "iam_demo").glob("*.eml"))) == CONTACTS
        assert not rt.iam.denied


def test_without_its_ses_permission_the_worker_sends_nothing_and_access_denied_is_reported(tmp_path):
    template = template_without(tmp_path, "SendEmailsFunction", "ses:SendEmail")
    with EmbeddedRuntime(template=template, outbox=tmp_path / "outbox") as rt:
        # However the worker classifies AccessDenied, the campaign settles: done (all failed) or paused.
        record, rows = demo(rt, until=lambda r: r.get("status") in ("completed", "paused", "failed"))
        assert int(record.get("sent_count", 0)) == 0
        assert not list((tmp_path / "outbox").glob("*/*.eml"))
        reported = json.dumps([record, rows], default=str)
        assert "AccessDenied" in reported and "ses:SendEmail" in reported
        worker_role = rt.role_of("SendEmailsFunction")
        identity = "arn:aws:ses:us-east-1:123456789012:identity/example.com"
        assert rt.iam.denied[(worker_role, "ses:SendEmail", identity)] >= 1


def test_a_request_outside_the_role_is_access_denied_naming_action_and_resource(harness):
    rt = harness.rt
    unsubscribe_role = rt.role_of("UnsubscribeFunction")
    key = {"campaign_id": {"S": "x"}, "email": {"S": "a@example.org"}}  # (it may read campaigns: issue 15)
    with acting_as(unsubscribe_role), pytest.raises(ClientError) as denied:
        rt.client("dynamodb").get_item(TableName=rt.physical["DeliveriesTable"], Key=key)
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "dynamodb:GetItem" in error["Message"] and rt.attributes[("DeliveriesTable", "Arn")] in error["Message"]
    with acting_as(unsubscribe_role), pytest.raises(ClientError) as denied:  # a query-compatible service
        rt.client("sqs").send_message(QueueUrl=rt.physical["SendQueue"], MessageBody="{}")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    # The operator (a test, the CLI) is not restricted.
    rt.client("dynamodb").get_item(TableName=rt.physical["CampaignsTable"], Key={"campaign_id": {"S": "x"}})


def test_eventbridge_may_dead_letter_feedback_events_only_for_the_feedback_rule(harness):
    rt = harness.rt
    queue = rt.attributes[("FeedbackDeadLetterQueue", "Arn")]
    rule = rt.attributes[("FeedbackFunctionBouncesAndComplaints", "Arn")]
    rt.iam.deliver_as_service("events.amazonaws.com", "sqs:SendMessage", queue, rule)
    with pytest.raises(PermissionError, match="sqs:SendMessage"):
        rt.iam.deliver_as_service("events.amazonaws.com", "sqs:SendMessage", queue, rule.replace("Feedback", "Other"))
    with pytest.raises(PermissionError):
        rt.iam.deliver_as_service("events.amazonaws.com", "sqs:SendMessage", rt.attributes[("SendQueue", "Arn")], rule)
