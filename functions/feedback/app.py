"""FeedbackFunction: SES bounce and complaint events (configuration set → EventBridge).

Each bounced or complained recipient: the contact is suppressed (never sent to again; a transient
bounce excepted), and the event is noted on the campaign's ledger row and counted in the campaign's
bounced_count / complained_count — once, however often the event is delivered.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

from bulkmail.adapters.contacts import suppress_contact
from bulkmail.adapters.wiring import stores
from bulkmail.clock import now_iso
from bulkmail.feedback import parse, ses_events
from bulkmail.metrics import emit_feedback

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    s = stores()
    results = []
    for ses_event in ses_events(event):
        for fb in parse(ses_event):
            now = now_iso()
            status = None
            if fb.suppress:
                status = suppress_contact(
                    s.contacts,
                    fb.email,
                    fb.kind,
                    now,
                    {**fb.detail, "campaign_id": fb.campaign_id or "", "ses_message_id": fb.ses_message_id},
                )
            recorded = bool(
                fb.campaign_id
                and s.ledger.record_feedback(
                    fb.campaign_id, fb.email, fb.kind, now, {**fb.detail, "ses_message_id": fb.ses_message_id}
                )
            )
            logger.info(
                "feedback",
                extra={
                    "kind": fb.kind,
                    "campaign_id": fb.campaign_id,
                    "suppressed": fb.suppress,
                    "contact_status": status,
                    "recorded_on_ledger": recorded,
                },
            )
            if recorded:
                emit_feedback(metrics, fb.kind)
            results.append({"email": fb.email, "kind": fb.kind, "contact_status": status, "recorded": recorded})
    return {"processed": results}
