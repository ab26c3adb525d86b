"""ContinueCampaignFunction: carry a long campaign on in a fresh execution (history stays bounded)."""

from aws_lambda_powertools import Logger, Tracer

from bulkmail.adapters.dynamo import busy_as_named_error
from bulkmail.adapters.stepfunctions import start_execution_once
from bulkmail.adapters.wiring import stores
from bulkmail.workflow import continue_as_new

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="state.campaign_id")
@tracer.capture_lambda_handler
def handler(event, context):
    with busy_as_named_error():  # a retryable DynamoDB fault: the state machine retries the step
        result = continue_as_new(
            event["state"],
            event["state_machine_arn"],
            campaigns=stores().campaigns,
            start_execution=start_execution_once,
        )
    logger.info("continued as a new execution", extra=result)
    return result
