"""UnsubscribeFunction: the public API (no auth), the Powertools REST resolver in `bulkmail.public_api`.

Named for its first routes (one-click unsubscribe); the name stays so a deployed stack updates it in place.
"""

from aws_lambda_powertools import Logger, Tracer

from bulkmail.public_api import app

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    return app.resolve(event, context)
