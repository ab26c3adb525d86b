"""The public API: the routes a recipient reaches without credentials (the links in every email).

One Powertools REST resolver, served by UnsubscribeFunction behind `PublicApi`; each resource's routes
live in a `Router` of their own under `bulkmail.http`, included here.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from bulkmail.http import archive, preferences, signup, unsubscribe

app = APIGatewayRestResolver()
app.include_router(unsubscribe.router)
app.include_router(archive.router)  # the public archive (issue 16)
app.include_router(signup.router)  # double opt-in signup (issue 15)
app.include_router(preferences.router)  # a contact chooses their lists (issue 15)
