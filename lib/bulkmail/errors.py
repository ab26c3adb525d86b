"""The errors bulkmail raises on purpose, each with a message a person can act on.

The worker and the workflow classify by type; Step Functions sees the class name as the error name.
"""


class BulkmailError(Exception):
    """Base class: every error bulkmail raises on purpose."""


class CampaignInvalid(BulkmailError):
    """The campaign (or a field of it) is not acceptable. `errors` lists every problem found."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


class CampaignTooLarge(CampaignInvalid):
    """The campaign is valid but too large to store or to carry through the workflow (HTTP 413)."""


class CampaignNotFound(BulkmailError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"Campaign {campaign_id} not found in DynamoDB")


class InputInvalid(BulkmailError):
    """Input a user sent (a CSV, a segment, a contact change) that cannot be taken: 4xx naming the field."""

    def __init__(self, errors: list[dict[str, str]], status: int = 400) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors
        self.status = status


class ContactNotFound(BulkmailError):
    def __init__(self, email: str) -> None:
        super().__init__(f"Contact {email} not found in DynamoDB")


class SecretNotConfigured(BulkmailError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"No AWS secret name configured in campaign {campaign_id}")


class ConfigurationError(BulkmailError):
    """The deployment's environment is missing or malformed (raised at cold start)."""


class SecretMalformed(BulkmailError, ValueError):
    """A secret in Secrets Manager does not hold what bulkmail reads from it (a JSON object, a string)."""


class QueueRefused(BulkmailError, RuntimeError):
    """SQS kept refusing some entries of a SendMessageBatch after the retries."""


class MalformedMessage(BulkmailError, ValueError):
    """A queue message's body is not a batch bulkmail sent."""


# --- Send outcomes the transports classify into (docs/architecture.md, decision 10) ----------


class SendError(BulkmailError):
    """A send did not go through. Subclasses say what to do about it."""


class Throttled(SendError):
    """Too fast: retry later through the message; never counted as sent or failed."""


class TransientSendError(SendError):
    """Might work on a retry: bounded retries, then failed."""


class PermanentSendError(SendError):
    """Will never work for this recipient (rejected, bad address): failed at once."""


class SendingPaused(SendError):
    """The sending account cannot send at all (sending paused, suspended): pause the campaign."""


class BatchBusy(BulkmailError):
    """Another worker holds a live lease on this message's batch: retry the message later."""


class InvalidUnsubscribeToken(BulkmailError):
    """An unsubscribe token that is malformed or whose signature does not match: change nothing."""


class InvalidSignupToken(BulkmailError):
    """A signup confirmation token that is malformed, forged or expired: change nothing."""


class SignupRateLimited(BulkmailError):
    """Too many signups from one client or for one address within a window (HTTP 429)."""

    def __init__(self, field: str, message: str, retry_after: int) -> None:
        self.field = field
        self.retry_after = retry_after
        super().__init__(message)


class DatabaseBusy(BulkmailError):
    """DynamoDB kept refusing a write with a fault that wrote nothing (conflict, throttling, 500) after
    the retries: the workflow step is retried by its state machine Retry (the error's name), never failed."""


class TemplateBudgetExceeded(BulkmailError):
    """A template took longer, looped more or produced more than a render may (a budget, not a bug)."""


class InvalidTransition(BulkmailError):
    """The campaign is not in a status the action applies to (HTTP 409)."""


class CampaignExists(BulkmailError):
    """A campaign by this id exists, or its execution ran before (HTTP 409)."""

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"{campaign_id} already exists")


class NoAudience(BulkmailError):
    """The campaign's list has nobody in it to send to (HTTP 422); `errors` names each problem."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(e["message"] for e in errors))


# --- A worker's message that is to come back later (never counted) ------------------------------


class CampaignWaiting(SendError):
    """The campaign is not sending now (scheduled, or paused while parking failed): retry later."""


class OutOfTime(SendError):
    """The invocation is about to time out: what was sent is recorded, the rest comes back later."""


class PacingDeferred(SendError):
    """The campaign's next send slot is further away than this worker should wait: what was sent is
    recorded, and the message is to come back in `seconds` (the worker is free for other campaigns)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"next send slot in {seconds:.1f} s")


# --- Step Functions and the API's pages (adapters/stepfunctions, adapters/dynamo) ---------------------


class ExecutionNotFound(LookupError):
    """No execution by that ARN (or none the caller may see)."""


class ExecutionExists(Exception):
    """An execution by this name exists already (running with another input, or finished)."""


class BadCursor(ValueError):
    """A pagination token that this API did not hand out."""


# --- The HTTP layer ------------------------------------------------------------------------------


class ApiError(Exception):
    """A request the HTTP layer refuses: `status` and the body's `errors` ([{"field", "message"}])."""

    def __init__(self, status: int, field: str, message: str, errors: list[dict[str, str]] | None = None) -> None:
        self.status = status
        self.errors = errors or [{"field": field, "message": message}]
        super().__init__(message)


# --- stored templates (adapters/templates) -------------------------------------------------------


class TemplateNotFound(BulkmailError):
    def __init__(self, template_id: str, version: int | None = None) -> None:
        self.template_id, self.version = template_id, version
        which = f"version {version} of template {template_id}" if version is not None else f"template {template_id}"
        super().__init__(f"{which} not found")


class TemplateExists(BulkmailError):
    def __init__(self, template_id: str) -> None:
        self.template_id = template_id
        super().__init__(f"template {template_id} already exists: PUT /templates/{template_id} adds a version")


class TemplateBusy(BulkmailError):
    """Writers kept taking the next version number: the request may be sent again."""

    def __init__(self, template_id: str) -> None:
        self.template_id = template_id
        super().__init__(f"template {template_id} is being changed by others; try again")
