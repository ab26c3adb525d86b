"""ValidateCampaignFunction: the campaign against the one schema and the template rules."""

from aws_lambda_powertools import Logger, Tracer

from bulkmail.adapters.wiring import custom_fields_in_use
from bulkmail.errors import CampaignInvalid
from bulkmail.validation import validate_campaign

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    try:
        # The API refused client-set internal fields; placeholders may name the custom fields in use.
        campaign = validate_campaign(event, trusted=True, custom_fields=custom_fields_in_use())
    except CampaignInvalid as exc:
        logger.warning("campaign rejected", extra={"errors": exc.errors})
        raise
    logger.info("campaign valid", extra={"campaign_id": campaign["campaign_id"]})
    return {"campaign": campaign}
