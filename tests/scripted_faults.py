"""Scripted answers at the embedded runtime's AWS boundary (EmbeddedRuntime.faults): SES errors for
chosen recipients, and refusals of chosen operations — the real error responses, so the code under
test takes its real error paths."""

from __future__ import annotations

import base64
import email
import json
from collections import Counter

from bulkmail_local.runtime.faults import _body, _error, _operation


class ScriptedFaults:
    def __init__(self, ses: dict[str, list[str]] | None = None, refuse: set[tuple[str, str]] = frozenset()):
        """`ses`: recipient → SES error codes to answer, one per attempt, in order (then it is accepted).
        `refuse`: (service, operation) pairs answered with a 500, e.g. ("AWSEvents", "PutEvents")."""
        self.ses = {k: list(v) for k, v in (ses or {}).items()}
        self.refuse = set(refuse)
        self.answered: Counter[str] = Counter()

    def before(self, request):
        operation = _operation(request)
        if operation in self.refuse:
            self.answered[".".join(operation)] += 1
            return _error(500, "InternalException", "refused by the test", request.url)
        if operation == ("sesv2", "SendEmail"):
            raw = base64.b64decode(json.loads(_body(request))["Content"]["Raw"]["Data"])
            recipient = email.message_from_bytes(raw)["To"].split("<")[-1].strip(">").lower()
            codes = self.ses.get(recipient)
            if codes:
                code = codes.pop(0)
                self.answered[code] += 1
                status = 429 if code == "TooManyRequestsException" else 400
                return _error(status, code, f"{code} (scripted)", request.url)
        return None

    def after(self, request, response) -> None:
        return None
