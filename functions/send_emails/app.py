"""SendEmailsFunction: the SQS worker. Each record is one batch of contact references."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from bulkmail.adapters.wiring import stores, transport_for, unsubscribe_links
from bulkmail.errors import PacingDeferred
from bulkmail.models import BatchMessage
from bulkmail.sending import BatchSender

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

MAX_RETRY_DELAY_SECONDS = 300
MAX_MARGIN_SECONDS = 10


def retry_delay(receive_count: int) -> int:
    """Visibility backoff for a record that failed: 2, 4, 8 … seconds, capped at five minutes."""
    return min(MAX_RETRY_DELAY_SECONDS, 2 ** max(1, receive_count))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    s = stores()
    # Stop sending with a margin before the timeout, so that what was sent is always recorded.
    margin = min(MAX_MARGIN_SECONDS, 0.2 * context.get_remaining_time_in_millis() / 1000)
    sender = BatchSender(
        settings=s.settings,
        campaigns=s.campaigns,
        contacts=s.contacts,
        ledger=s.ledger,
        transport_for=transport_for,  # new per invocation: transports and pacing per invocation
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
        send_margin=margin,
    )
    sender.unsubscribe_links = unsubscribe_links()  # every email carries its one-click unsubscribe link

    def record_handler(record: SQSRecord) -> None:
        message = BatchMessage.from_body(record.json_body)
        logger.append_keys(campaign_id=message.campaign_id, batch_id=message.batch_id)
        receive_count = int(record.attributes.approximate_receive_count)
        try:
            sender.process(message, final_attempt=receive_count >= s.settings.max_receive_count)
        except PacingDeferred as deferred:
            # The campaign's rate leaves this worker nothing to do for a while: the batch comes back as
            # a fresh message at its next slot (its receive count, which leads to the DLQ, untouched).
            s.queue.send([message], delay_seconds=round(deferred.seconds))
            logger.info("batch deferred by pacing", extra={"retry_in_seconds": deferred.seconds})
        except Exception as exc:
            # Come back sooner than the queue's visibility timeout (which is sized for crashes).
            delay = retry_delay(receive_count)
            logger.warning("batch will be retried", extra={"error": repr(exc), "retry_in_seconds": delay})
            s.queue.retry_later(record.receipt_handle, delay)
            raise

    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        sender.close()  # one SMTP connection per invocation's batch, closed at its end
    sender.stats.emit(metrics)  # this invocation's aggregates (bulkmail.metrics), flushed once by log_metrics
    return response
