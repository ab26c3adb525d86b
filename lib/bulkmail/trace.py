"""An execution's path through the states, with timings, read from its Step Functions history.

Used by GET /campaigns/{id}/trace (and through it `bulkmail trace` and the dashboard). Pure: the
events come from `bulkmail.adapters.stepfunctions.execution_history`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Each AdvanceCampaign step writes the counters it read to $.advance.counts: one sample a step.
PROGRESS_STATE = "AdvanceCampaign"


@dataclass(frozen=True)
class Step:
    state: str
    started: float  # seconds after the execution started
    seconds: float | None  # None while the state has not exited


def steps(events: list[dict[str, Any]]) -> list[Step]:
    """Each state entered, in order, paired with its exit."""
    if not events:
        return []
    start: datetime = events[0]["timestamp"]
    result: list[Step] = []
    open_steps: dict[str, int] = {}
    for event in events:
        if "stateEnteredEventDetails" in event:
            name = event["stateEnteredEventDetails"]["name"]
            open_steps[name] = len(result)
            result.append(Step(name, (event["timestamp"] - start).total_seconds(), None))
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            index = open_steps.pop(name, None)
            if index is not None:
                entered = result[index]
                seconds = (event["timestamp"] - start).total_seconds() - entered.started
                result[index] = Step(entered.state, entered.started, max(0.0, seconds))
    return result


def path(all_steps: list[Step]) -> list[dict[str, Any]]:
    """States in the order first entered, with how often each ran and for how long in all.

    A 10M-contact campaign loops through AdvanceCampaign thousands of times: the path a
    person reads is the states, not every lap.
    """
    summary: dict[str, dict[str, Any]] = {}
    for step in all_steps:
        entry = summary.setdefault(
            step.state,
            {"state": step.state, "entered": 0, "first_started": step.started, "seconds": 0.0, "running": False},
        )
        entry["entered"] += 1
        entry["seconds"] = round(entry["seconds"] + (step.seconds or 0.0), 3)
        entry["running"] = step.seconds is None
    return list(summary.values())


def progress_samples(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(time, processed, sent, failed, skipped, total) each time a workflow step read the counters: the
    campaign's progress over time."""
    samples = []
    for event in events:
        details = event.get("stateExitedEventDetails")
        if not details or details.get("name") != PROGRESS_STATE:
            continue
        try:
            counts = (json.loads(details.get("output") or "{}").get("advance") or {}).get("counts") or {}
        except ValueError:
            continue  # an output Step Functions truncated: the sample is lost, the path is not
        if isinstance(counts.get("processed_count"), int):
            samples.append(
                {
                    "at": event["timestamp"].isoformat(timespec="milliseconds"),
                    "processed": counts["processed_count"],
                    "total": counts.get("total_contacts"),
                    **{outcome: counts.get(f"{outcome}_count", 0) for outcome in ("sent", "failed", "skipped")},
                }
            )
    return samples
