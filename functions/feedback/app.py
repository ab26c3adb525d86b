"""FeedbackFunction: SES events from the configuration sets (→ EventBridge).

Each bounced or complained recipient: the contact is suppressed (never sent to again; a transient
bounce excepted), and the event is noted on the campaign's ledger row and counted in the campaign's
bounced_count / complained_count — once, however often the event is delivered.

Opens, clicks and delivery outcomes (the tracked configuration set): counted once each on the
campaign's engagement counters; the first open and click of a recipient also on its ledger row
(not in privacy mode).
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

from bulkmail.adapters.contacts import suppress_contact
from bulkmail.adapters.events import publish_contact_event
from bulkmail.adapters.wiring import engagement_store, stores
from bulkmail.feedback import engagement_events, parse, parse_engagement, ses_events
from bulkmail.metrics import emit_engagement, emit_feedback
from bulkmail.sending import now_iso
from bulkmail.tracking import contact_events

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
                if fb.kind == "bounced" and contact_events(s.settings):
                    publish_contact_event(
                        s.settings.event_bus_name, "bounced", str(fb.campaign_id), fb.email, now, **fb.detail
                    )
            results.append({"email": fb.email, "kind": fb.kind, "contact_status": status, "recorded": recorded})
    for ses_event in engagement_events(event):
        engagement = parse_engagement(ses_event)
        if engagement is None:
            continue
        counted = engagement_store().record(engagement)
        logger.info(
            "engagement",
            extra={"kind": engagement.kind, "campaign_id": engagement.campaign_id, "counted": counted.counted},
        )
        if counted.counted:
            emit_engagement(metrics, engagement.kind)
        first = counted.unique and engagement.kind in ("open", "click") and not engagement.private
        if first and contact_events(s.settings):
            link = {"link": engagement.link} if engagement.link else {}
            publish_contact_event(
                s.settings.event_bus_name,
                engagement.kind,
                engagement.campaign_id,
                engagement.email,
                engagement.at,
                **link,
            )
        results.append({"kind": engagement.kind, "counted": counted.counted, "unique": counted.unique})
    return {"processed": results}
