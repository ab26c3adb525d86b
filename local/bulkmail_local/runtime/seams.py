"""Where the embedded runtime reaches into moto's internals to answer a request itself.

Every answer the runtime makes up (an AWS limit refused, a fault injected, IAM's AccessDenied) is a
botocore response on moto's raw-body object, built here, once. The patches of moto's and Powertools'
internals, and why each is there, are listed in docs/architecture.md ("Runtime seams"); each is
guarded by tests/unit/test_runtime_seams.py, which fails, naming the seam, when an upgrade moves it.
"""

from __future__ import annotations

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse


def aws_response(url: str, status: int, headers: dict[str, str], body: str | bytes) -> AWSResponse:
    """An answer to a botocore request, given before moto sees it (headers as a dict, as moto's own
    stubber gives them: botocore reads them by name)."""
    return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]
