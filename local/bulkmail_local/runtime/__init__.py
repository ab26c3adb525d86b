"""The embedded runtime: template.yaml's resources on moto, the real ASL on moto's interpreter, the
real handlers in-process, and faithful emulations of the triggers AWS owns (the SQS event source)."""

from bulkmail_local.runtime.stack import EmbeddedRuntime

__all__ = ["EmbeddedRuntime"]
