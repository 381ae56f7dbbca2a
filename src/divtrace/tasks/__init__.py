"""Task families: one module per family, registered by name in :data:`FAMILIES`."""

from __future__ import annotations

from divtrace.tasks import gsm8k, ifeval, writingprompts
from divtrace.tasks.base import TaskDataError, TaskFamily

FAMILIES: dict[str, TaskFamily] = {
    module.FAMILY.name: module.FAMILY for module in (gsm8k, ifeval, writingprompts)
}


def get_family(name: str) -> TaskFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise TaskDataError(f"unknown task family {name!r} (known: {sorted(FAMILIES)})") from None


__all__ = ["FAMILIES", "TaskDataError", "TaskFamily", "get_family"]
