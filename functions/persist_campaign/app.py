"""PersistCampaignFunction: store the validated campaign as queued, with its recipient estimate."""
from aws_lambda_powertools import Logger, Tracer

from bulkmail.adapters.wiring import stores
from bulkmail.workflow import persist_campaign

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="campaign.campaign_id")
@tracer.capture_lambda_handler
def handler(event, context):
    s = stores()
    return persist_campaign(event["campaign"], event["execution_arn"],
                            campaigns=s.campaigns, contacts=s.contacts, ledger=s.ledger, settings=s.settings)
