"""Task families: one module per family, registered by name in :data:`FAMILIES`."""

from __future__ import annotations

from divtrace.tasks import (
    alpaca,
    cnn_dailymail,
    cruxeval,
    gsm8k,
    humaneval,
    ifeval,
    math,
    mbpp,
    prism,
    tldr,
    truthfulqa,
    wildbench,
    writingprompts,
    xsum,
)
from divtrace.tasks.base import TaskDataError, TaskFamily

FAMILIES: dict[str, TaskFamily] = {
    family.name: family
    for family in (
        gsm8k.FAMILY,
        *math.FAMILIES,
        humaneval.FAMILY,
        mbpp.FAMILY,
        cruxeval.FAMILY,
        ifeval.FAMILY,
        truthfulqa.FAMILY,
        tldr.FAMILY,
        cnn_dailymail.FAMILY,
        xsum.FAMILY,
        alpaca.FAMILY,
        writingprompts.FAMILY,
        prism.FAMILY,
        wildbench.FAMILY,
    )
}


def get_family(name: str) -> TaskFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise TaskDataError(f"unknown task family {name!r} (known: {sorted(FAMILIES)})") from None


__all__ = ["FAMILIES", "TaskDataError", "TaskFamily", "get_family"]
