"""AdvanceCampaignFunction: one step of the workflow's loop (fan out a page, or see whether it is done)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

from bulkmail.adapters.dynamo import busy_as_named_error
from bulkmail.adapters.wiring import stores
from bulkmail.metrics import emit_advance
from bulkmail.workflow import advance

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="campaign_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    s = stores()
    with busy_as_named_error():  # a retryable DynamoDB fault: the state machine retries the step
        result = advance(
            event["campaign_id"],
            int(event["steps"]),
            campaigns=s.campaigns,
            contacts=s.contacts,
            ledger=s.ledger,
            queue=s.queue,
            settings=s.settings,
        )
    logger.info("workflow step", extra=result)
    emit_advance(metrics, result)
    return result
