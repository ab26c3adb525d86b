"""FanOutPageFunction: enqueue the next page of contact references, back-pressured."""
from aws_lambda_powertools import Logger, Metrics, Tracer

from bulkmail.adapters.wiring import stores
from bulkmail.metrics import emit_fanout
from bulkmail.workflow import fan_out_page

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="campaign_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    s = stores()
    result = fan_out_page(event["campaign_id"], campaigns=s.campaigns, contacts=s.contacts, ledger=s.ledger,
                          queue=s.queue, settings=s.settings)
    logger.info("fan-out step", extra=result)
    emit_fanout(metrics, result)
    return result
