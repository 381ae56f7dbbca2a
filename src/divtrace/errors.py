"""The errors that mean "bad input" (reported as one line naming the culprit, exit status 2).

Anything else is a bug and keeps its traceback. Set ``DIVTRACE_DEBUG=1`` to get tracebacks for
input errors too.
"""

from __future__ import annotations

import os

from divtrace.config import ConfigError
from divtrace.generation.hf import SamplingError
from divtrace.generation.prompting import PromptFormatError
from divtrace.generation.sample import ShardError
from divtrace.io import ContractError
from divtrace.lineage import LineageError
from divtrace.models import FetchError
from divtrace.tasks.base import TaskDataError

KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    ()
    if os.environ.get("DIVTRACE_DEBUG")
    else (
        ConfigError,
        ContractError,
        FetchError,
        FileNotFoundError,
        LineageError,
        PromptFormatError,
        SamplingError,
        ShardError,
        TaskDataError,
        ValueError,
    )
)
