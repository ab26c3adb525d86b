"""PersistCampaignFunction: store the validated campaign as queued, with its recipient estimate."""

from aws_lambda_powertools import Logger, Tracer

from bulkmail.adapters.dynamo import busy_as_named_error
from bulkmail.adapters.wiring import stores
from bulkmail.workflow import persist_campaign

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="campaign.campaign_id")
@tracer.capture_lambda_handler
def handler(event, context):
    s = stores()
    with busy_as_named_error():  # a retryable DynamoDB fault: the state machine retries the step
        return persist_campaign(
            event["campaign"],
            event["execution_arn"],
            campaigns=s.campaigns,
            contacts=s.contacts,
            ledger=s.ledger,
            settings=s.settings,
        )
