"""The seed's per-email design, rebuilt on the same emulator as the yardstick for `bulkmail bench`.

As the seed project built it: the API queues one SQS message per contact
({"campaign_id", "contact_email"}); a worker Lambda, triggered with batches of 10, reads the campaign
(GetItem) and the contact (GetItem) for every message, personalises by string replacement, sends
through SES and adds one to sent_count (UpdateItem). It runs on the runtime's own tables and SES, and
its worker on the same SQS event source emulation with the same concurrency as bulkmail's.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3

from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.event_source import MappingConfig, SqsEventSource
from bulkmail_local.runtime.stack import REGION

SEED_CAMPAIGN = {
    "campaign_name": "Monthly Newsletter",
    "subject": "Hello {{first_name}}!",
    "body": "Dear {{first_name}} {{last_name}}, welcome to {{company}}",
    "from_email": "noreply@example.com",
}


class SeedWorker:
    """email_worker_lambda.py: one email per SQS message."""

    def __init__(self, campaigns_table: str, contacts_table: str, region: str):
        dynamodb = boto3.resource("dynamodb", region_name=region)
        self.campaigns = dynamodb.Table(campaigns_table)
        self.contacts = dynamodb.Table(contacts_table)
        self.ses = boto3.client("sesv2", region_name=region)

    def handler(self, event: dict[str, Any], _context: Any = None) -> None:
        for record in event["Records"]:
            ref = json.loads(record["body"])
            campaign = self.campaigns.get_item(Key={"campaign_id": ref["campaign_id"]})["Item"]
            contact = self.contacts.get_item(Key={"email": ref["contact_email"]})["Item"]
            subject, body = campaign["subject"], campaign["body"]
            for field in ("first_name", "last_name", "company"):
                subject = subject.replace(f"{{{{{field}}}}}", str(contact.get(field, "")))
                body = body.replace(f"{{{{{field}}}}}", str(contact.get(field, "")))
            self.ses.send_email(
                FromEmailAddress=campaign["from_email"],
                Destination={"ToAddresses": [contact["email"]]},
                Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}}},
            )
            self.campaigns.update_item(
                Key={"campaign_id": ref["campaign_id"]},
                UpdateExpression="SET sent_count = sent_count + :inc",
                ExpressionAttributeValues={":inc": 1},
            )


def run_seed_design(rt: EmbeddedRuntime, emails: list[str], *, workers: int, timeout: float) -> dict[str, Any]:
    """Send one campaign to `emails` (already in the contacts table) the seed's way. Returns seconds and sent."""
    sqs = rt.client("sqs")
    queue_url = sqs.create_queue(
        QueueName=f"seed-{rt.physical['SendQueue'].rsplit('/', 1)[-1]}", Attributes={"VisibilityTimeout": "60"}
    )["QueueUrl"]
    campaign_id = f"seed_{int(time.time())}"
    campaigns = rt.table("CampaignsTable")
    campaigns.put_item(Item={"campaign_id": campaign_id, **SEED_CAMPAIGN, "sent_count": 0, "status": "processing"})
    worker = SeedWorker(rt.physical["CampaignsTable"], rt.physical["ContactsTable"], REGION)
    source = SqsEventSource(
        MappingConfig(
            queue_url=queue_url, queue_arn="arn:seed", function="SeedWorker", batch_size=10, maximum_concurrency=workers
        ),
        sqs,
        worker.handler,
        REGION,
    )

    def api_lambda() -> None:  # bulk_email_api_lambda.send_campaign: one message per contact
        for i in range(0, len(emails), 10):
            sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "MessageBody": json.dumps({"campaign_id": campaign_id, "contact_email": e})}
                    for n, e in enumerate(emails[i : i + 10])
                ],
            )

    started = time.monotonic()
    api = threading.Thread(target=api_lambda, name="seed-api-lambda")
    api.start()
    source.start()
    try:
        deadline = started + timeout
        sent = 0
        while time.monotonic() < deadline:
            sent = int(campaigns.get_item(Key={"campaign_id": campaign_id}, ConsistentRead=True)["Item"]["sent_count"])
            if sent >= len(emails):
                break
            time.sleep(0.2)
        seconds = time.monotonic() - started
    finally:
        source.stop()
        api.join(timeout)
    return {"seconds": seconds, "sent": sent, "invocations": source.batches}
