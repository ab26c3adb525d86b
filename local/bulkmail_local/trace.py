"""`bulkmail trace`: an execution's path through the states, with timings, from its real history."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Step:
    state: str
    started: float        # seconds after the execution started
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
