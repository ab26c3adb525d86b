"""AWS cost per 1M emails, by line, from measured per-email usage and the list prices in prices.json.

The deployment it projects is template.yaml's defaults (send rate, poll interval, page size, worker
concurrency and memory): what measured requests and capacity units cost at that scale, plus the two
lines the emulator cannot measure — Lambda duration (mostly pacing: a worker is billed while it waits
for its next send slot) and the polls of a campaign that lasts 1M / rate seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
MILLION = 1_000_000


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Deployment:
    """The template's defaults: what a campaign on a fresh stack runs with."""

    send_rate: float
    poll_seconds: float
    page_size: int
    recipients_per_message: int
    worker_concurrency: int
    worker_memory_mb: int
    workflow_memory_mb: int

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> Deployment:
        params = {k: v.get("Default") for k, v in template["Parameters"].items()}
        resources = template["Resources"]
        default_memory = template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
        memory = {
            k: r["Properties"].get("MemorySize", default_memory)
            for k, r in resources.items()
            if r["Type"] == "AWS::Serverless::Function"
        }
        return cls(
            send_rate=float(params["DefaultMaxSendRate"]),
            poll_seconds=float(params["PollSeconds"]),
            page_size=int(params["FanoutPageSize"]),
            recipients_per_message=int(params["RecipientsPerMessage"]),
            worker_concurrency=int(params["WorkerMaxConcurrency"]),
            worker_memory_mb=int(memory["SendEmailsFunction"]),
            workflow_memory_mb=int(memory["AdvanceCampaignFunction"]),
        )


def worker_seconds_per_email(d: Deployment, assumptions: dict[str, float]) -> float:
    """Billed worker time per email: the pacing interval of one worker, or the send itself if longer,
    plus its share of the per-message DynamoDB requests (campaign, claim, contacts, record)."""
    per_message = 4 * assumptions["dynamodb_request_seconds"] / d.recipients_per_message
    return max(d.worker_concurrency / d.send_rate, assumptions["ses_send_seconds"]) + per_message


def cost_per_million(usage: dict[str, float], d: Deployment, prices: dict[str, Any]) -> dict[str, float]:
    """usage, per email: requests by service ("sesv2", "sqs", "secretsmanager"), dynamodb read/write
    units and worker invocations; and Step Functions transitions per page and per poll. The workflow's
    Lambda steps are one per page and one per poll."""
    a = prices["assumptions"]
    polls = MILLION / d.send_rate / d.poll_seconds
    transitions = MILLION * usage["transitions_per_page"] / d.page_size + polls * usage["transitions_per_poll"]
    workflow_invocations = MILLION / d.page_size + polls
    gb_seconds = (
        MILLION * worker_seconds_per_email(d, a) * d.worker_memory_mb
        + workflow_invocations * a["workflow_invocation_seconds"] * d.workflow_memory_mb
    ) / 1024
    lines = {
        "ses": MILLION * usage["ses_requests"] / 1000 * prices["ses_per_1000_emails"],
        "lambda_requests": (MILLION * usage["worker_invocations"] + workflow_invocations)
        / MILLION
        * prices["lambda_per_million_requests"],
        "lambda_duration": gb_seconds * prices["lambda_per_gb_second"],
        "dynamodb_reads": usage["dynamodb_read_units"] * prices["dynamodb_per_million_read_units"],
        "dynamodb_writes": usage["dynamodb_write_units"] * prices["dynamodb_per_million_write_units"],
        "sqs": usage["sqs_requests"] * prices["sqs_per_million_requests"],
        "step_functions": transitions / 1000 * prices["step_functions_per_1000_transitions"],
        "secrets_manager": MILLION
        * usage["secretsmanager_requests"]
        / 10000
        * prices["secrets_manager_per_10000_calls"],
    }
    lines = {k: round(v, 4) for k, v in lines.items()}
    lines["non_ses_total"] = round(sum(v for k, v in lines.items() if k != "ses"), 4)
    lines["non_ses_share_of_ses"] = round(lines["non_ses_total"] / lines["ses"], 4) if lines["ses"] else 0.0
    return lines
