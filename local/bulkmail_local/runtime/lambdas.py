"""Lambda functions run in-process: the handler named in template.yaml, loaded from its CodeUri."""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bulkmail_local.runtime.iam import acting_as
from bulkmail_local.runtime.seams import private_metrics

_invocation = threading.local()


def current_function() -> str | None:
    """The logical id of the function this thread is running an invocation of, if any."""
    return getattr(_invocation, "logical_id", None)


@dataclass
class LambdaContext:
    """What a handler may ask of its context object (Powertools reads these)."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    """One Lambda function. Each calling thread gets a container of its own — its own copy of the
    handler module and so of its module-level state (a Powertools BatchProcessor, for one) — because
    a Lambda container runs one invocation at a time."""

    logical_id: str
    name: str
    arn: str
    load: Callable[[str], Callable[[Any, Any], Any]]
    memory: int
    timeout: int
    role_arn: str | None = None  # its execution role: its AWS requests are authorized against it
    invocations: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _containers: threading.local = field(default_factory=threading.local)

    @property
    def handler(self) -> Callable[[Any, Any], Any]:
        if not hasattr(self._containers, "handler"):
            with self._lock:
                self._containers.handler = self.load(f"{self.logical_id}_{self.invocations}_{threading.get_ident()}")
        return self._containers.handler

    def invoke(self, event: Any) -> Any:
        """Call the handler as Lambda would; exceptions propagate to the caller."""
        handler = self.handler
        with self._lock:
            self.invocations += 1
        context = LambdaContext(self.name, self.memory, self.arn, self.timeout)
        caller, _invocation.logical_id = current_function(), self.logical_id
        try:
            with acting_as(self.role_arn):
                return handler(event, context)
        except Exception:
            with self._lock:
                self.errors += 1
            raise
        finally:
            _invocation.logical_id = caller


def load_handler(code_dir: Path, handler: str, logical_id: str) -> Callable:
    """Import `module.function` from the function's CodeUri under a module name of its own (a cold start)."""
    module_name, _, function_name = handler.rpartition(".")
    path = code_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"bulkmail_fn_{logical_id}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{logical_id}: no handler module at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    private_metrics(module)  # a container's Powertools metric set is its own, as in a Lambda process
    return getattr(module, function_name)


def invoke_from_moto(registry: dict[str, LocalFunction]) -> Callable:
    """A replacement for moto's LambdaFunction._invoke_lambda (which needs Docker)."""

    def _invoke_lambda(self, event: Any = None) -> tuple[str, bool, str]:
        fn = registry[self.function_name]
        try:
            result = fn.invoke(event if event is not None else {})
            return json.dumps(result, default=str), False, ""
        except Exception as exc:  # noqa: BLE001 — reported to the caller exactly as Lambda reports a function error
            payload = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-5:],
            }
            return json.dumps(payload), True, ""

    return _invoke_lambda


def redirect_function_logs(stream: TextIO) -> Callable[[], None]:
    """Send function logs where CloudWatch would hold them, not onto the user's terminal.

    Returns the undo, which puts the original streams back.
    """
    undo = []
    for logger_name in ("bulkmail", "aws_lambda_powertools"):
        for h in logging.getLogger(logger_name).handlers:
            if type(h) is logging.StreamHandler:  # not a test framework's capturing subclass
                undo.append((h, h.setStream(stream)))

    def restore() -> None:
        for h, original in undo:
            h.setStream(original)

    return restore
