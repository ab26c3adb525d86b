"""ScheduleFailedFunction: campaigns whose scheduled start failed (the scheduler's dead letters)
are marked failed with the error, so none stays "scheduled" forever."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from bulkmail.adapters.wiring import stores
from bulkmail.clock import now_iso
from bulkmail.schedule_failures import failed_start, mark_start_failed, sqs_string_attributes

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record) -> None:
    campaign_id, cause = failed_start(record.body, sqs_string_attributes(record.raw_event))
    marked = mark_start_failed(stores().campaigns, campaign_id, cause, now_iso())
    logger.warning("scheduled start failed", extra={"campaign_id": campaign_id, "cause": cause, "marked": marked})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
