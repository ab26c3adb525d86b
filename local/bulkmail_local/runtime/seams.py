"""Every place the embedded runtime patches moto's or Powertools' internals, in this one module.

An upgrade of moto or Powertools is read against this file and its guards in
tests/unit/test_runtime_seams.py, which fail, naming the seam, when upstream moves what is patched here
(docs/architecture.md, "Runtime seams"; docs/dependencies.md, how to upgrade). What the patches put in
place (the behaviour) lives with its subject: runtime.lambdas, runtime.limits, runtime.iam,
runtime.moto_fixes, runtime.metrics, runtime.clock; here is only where it is plugged in, and why.
A seam that upstream makes public, or fixes, is deleted here.

Every answer the runtime makes up (an AWS limit refused, a fault injected, IAM's AccessDenied) is a
botocore response on moto's raw-body object, built here too (aws_response).
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any
from unittest import mock

import moto.sqs.models
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from botocore.awsrequest import AWSResponse
from moto.awslambda.models import LambdaFunction
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.core.responses import BaseResponse
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models import DynamoDBBackend
from moto.iam import policy_conditions
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

if TYPE_CHECKING:
    from bulkmail_local.runtime.clock import RuntimeClock
    from bulkmail_local.runtime.stack import EmbeddedRuntime


def aws_response(url: str, status: int, headers: dict[str, str], body: str | bytes) -> AWSResponse:
    """An answer to a botocore request, given before moto sees it (headers as a dict, as moto's own
    stubber gives them: botocore reads them by name)."""
    return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


# Powertools' modules whose print() emits EMF (the provider; base holds single_metric).
EMF_MODULES = ("aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch", "aws_lambda_powertools.metrics.base")
# moto's Step Functions modules that check a state's payload with is_within_size_quota.
STATE_QUOTA_USERS = (
    "moto.stepfunctions.parser.asl.component.state.state",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
)
# moto's SQS reads the time (visibility, delay, retention, long polls) through these two names.
SQS_TIME_FUNCTIONS = ("unix_time", "unix_time_millis")


def install(stack: ExitStack, runtime: EmbeddedRuntime) -> None:
    """Enter every patch the runtime needs on `stack`, so that closing it undoes them all. Call it
    inside moto's mock_aws, with runtime.metrics and runtime.clock in place."""
    # Imported here: they import aws_response from this module.
    from bulkmail_local.runtime import limits, moto_fixes
    from bulkmail_local.runtime.lambdas import invoke_from_moto

    # 1. moto runs Lambda code in Docker; _invoke_lambda is its one call with the event: our handlers
    #    run in process instead.
    stack.enter_context(mock.patch.object(LambdaFunction, "_invoke_lambda", invoke_from_moto(runtime.functions)))
    # 2. Every emulated request passes BotocoreStubber.__call__ (botocore's before-send): one lock per
    #    request, IAM, AWS's limits, fault injection and metering around moto's answer.
    stack.enter_context(mock.patch.object(BotocoreStubber, "__call__", serialised_stubber(runtime)))
    # 3. moto deep-copies every table a transaction touches (moto_fixes says why it matters).
    stack.enter_context(mock.patch.object(DynamoDBBackend, "transact_write_items", moto_fixes.transact_write_items))
    # 4. moto's generic serializer was a fifth of a campaign's CPU on DynamoDB item operations.
    stack.enter_context(mock.patch.object(BaseJSONSerializer, "_serialize_result", moto_fixes.serialize_result))
    # 5. moto's IAM evaluator lacks ArnEquals; on an exact ARN (as runtime.iam checks) it is StringEquals.
    stack.enter_context(
        mock.patch.dict(
            policy_conditions.CONDITION_OPERATIONS, {"ArnEquals": policy_conditions.string_equals_operation}
        )
    )
    # 6. Step Functions counts a state's payload as UTF-8 bytes; moto counts otherwise.
    for module in STATE_QUOTA_USERS:
        stack.enter_context(mock.patch(f"{module}.is_within_size_quota", limits.within_state_quota))
    # 7. Powertools prints EMF documents to stdout; locally they go to the function log and EmfSink.
    for module in EMF_MODULES:
        stack.enter_context(mock.patch.object(importlib.import_module(module), "print", runtime.metrics, create=True))
    # 8. moto parses a state machine's definition to validate it at CreateStateMachine (half of a
    #    runtime's start-up); the same text is valid or not every time, so it is parsed once. Each
    #    runtime's names carry a suffix of its own: the text is compared without it (an 8-character
    #    hex suffix in a string changes no definition's validity).
    suffix = runtime.physical_suffix

    def validate_definition(definition: str) -> None:
        _validate_definition(definition.replace(suffix, "0" * len(suffix)))

    stack.enter_context(
        mock.patch.object(StepFunctionsParserBackend, "_validate_definition", staticmethod(validate_definition))
    )
    # 9. SQS time is the runtime's clock: a test moves it past a visibility timeout instead of sleeping.
    for name in SQS_TIME_FUNCTIONS:
        stack.enter_context(mock.patch.object(moto.sqs.models, name, _clock_function(runtime.clock, name)))


def observe_requests(stack: ExitStack, observer: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """10. Wrap moto's BaseResponse.call_action, which every request moto answers passes (the
    runtime's own and those sent to a loopback endpoint): durable state mirrors each change there."""
    stack.enter_context(mock.patch.object(BaseResponse, "call_action", observer(BaseResponse.call_action)))


def private_metrics(module: Any) -> None:
    """11. Give each Metrics object of a freshly loaded handler module a metric set of its own.

    On Lambda a process is a container; here one process runs many, and Powertools keeps its metric
    set in class attributes shared by every Metrics() of the process. The provider object stays (the
    module's @metrics.log_metrics decorator holds it); its sets are replaced."""
    for value in vars(module).values():
        if isinstance(value, Metrics) and isinstance(value.provider, AmazonCloudWatchEMFProvider):
            provider = value.provider
            provider.metric_set, provider.dimension_set, provider.metadata_set = {}, {}, {}
            provider.default_dimensions = dict(provider.default_dimensions)
            value.metric_set, value.dimension_set = provider.metric_set, provider.dimension_set
            value.metadata_set, value.default_dimensions = provider.metadata_set, provider.default_dimensions


_UPSTREAM_VALIDATE_DEFINITION = StepFunctionsParserBackend._validate_definition


@functools.lru_cache(maxsize=16)
def _validate_definition(definition: str) -> None:
    """moto's validation, once per definition text (an invalid one raises each time: not cached)."""
    _UPSTREAM_VALIDATE_DEFINITION(definition=definition)


def _clock_function(clock: RuntimeClock, name: str) -> Callable[[], float]:
    return clock.time if name == "unix_time" else clock.time_millis


# Requests after which a queue may have a message to receive: they end the event sources' idle wait.
_ENDS_A_LONG_POLL = ("before-send.sqs.SendMessage", "before-send.sqs.ChangeMessageVisibility")


def serialised_stubber(runtime: EmbeddedRuntime) -> Callable[..., Any]:
    """BotocoreStubber.__call__, made atomic per request, as the real services are (moto's are not
    thread-safe); it refuses what is over one of AWS's limits (runtime.limits), gives fault injection
    (runtime.faults) its place before and after each request, and lets a meter (runtime.meter) count it.

    Lambda invocations are left out: a function's own requests then take the lock one by one.
    """
    from bulkmail_local.runtime import limits

    original = BotocoreStubber.__call__
    lock: threading.RLock = runtime.request_lock

    def __call__(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        if "/functions/" in request.url and request.url.endswith("/invocations"):
            return _denied(event_name, request) or original(self, event_name, request, **kwargs)
        with lock:
            response = _denied(event_name, request) or _answer(self, event_name, request, **kwargs)
            if runtime.meter is not None:
                runtime.meter.record(event_name, request, response)
            if runtime.ses_events is not None:  # SES's configuration set and tags of a send (ses_events.py)
                runtime.ses_events.observe(event_name, request, response)
            if event_name.startswith(_ENDS_A_LONG_POLL):
                for source in runtime.event_sources:
                    source.wake()
            return response

    def _denied(event_name: str, request: Any) -> Any:
        return runtime.iam.check(event_name, request) if runtime.iam is not None else None

    def _answer(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        refused = limits.refuse(request)
        if refused is not None:
            return refused
        faults = runtime.faults
        if faults is not None:
            injected = faults.before(request)
            if injected is not None:
                return injected
        if runtime.ses_events is not None:
            runtime.ses_events.before(event_name, request)
        response = original(self, event_name, request, **kwargs)
        if faults is not None:
            faults.after(request, response)
        return response

    return __call__
