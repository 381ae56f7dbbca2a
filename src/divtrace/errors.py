"""The errors that mean "bad input": the user's config, data, files or models, not a bug.

Every one is a :class:`DivtraceError`. The ``divtrace`` command catches :class:`DivtraceError`
only, prints its message (one line naming the culprit: the config key, the record, the file, the
column) and exits with status 2; any other exception is a bug and keeps its traceback. Set
``DIVTRACE_DEBUG=1`` to get the traceback of an input error too.

Each class also derives from the built-in exception its callers would expect (``ValueError`` for
bad values, ``FileNotFoundError`` for a missing file, ``RuntimeError`` for a step that cannot
run), so ``except ValueError`` around a library call keeps working. This module imports nothing:
every module can import its error from here.
"""

from __future__ import annotations


class DivtraceError(Exception):
    """Bad input to divtrace (reported without a traceback by the command line)."""


class ConfigError(DivtraceError, ValueError):
    """The configuration is invalid; the message names the key."""


class LineageError(ConfigError):
    """The ``parent`` links of the models do not form one tree."""


class UsageError(DivtraceError, ValueError):
    """Bad command-line input."""


class TaskDataError(DivtraceError, ValueError):
    """A dataset record lacks a field or holds a value the task cannot use."""


class ContractError(DivtraceError, ValueError):
    """A table or file does not follow its contract (columns, types, nulls, duplicates)."""


class MissingFileError(DivtraceError, FileNotFoundError):
    """An input file does not exist."""


class FetchError(DivtraceError, RuntimeError):
    """A model cannot be fetched, built or found."""


class SamplingError(DivtraceError, RuntimeError):
    """Sampling cannot proceed (bad model directory, missing backend, bad engine setting, ...)."""


class ShardError(DivtraceError, ValueError):
    """A shard request is inconsistent with its inputs."""


class PromptFormatError(DivtraceError, ValueError):
    """A prompt cannot be rendered in the requested format."""


class MetricError(DivtraceError, ValueError):
    """A diversity metric was asked for with names or settings it does not have."""


class JudgeError(DivtraceError, ValueError):
    """A correctness judge cannot judge its input (a reference without the keys it needs, ...)."""


class SandboxError(DivtraceError, RuntimeError):
    """The code sandbox cannot run on this machine as configured."""


class AnalysisError(DivtraceError, ValueError):
    """Analysis inputs that cannot be combined (models outside the lineage, bad options, ...)."""


__all__ = [
    "AnalysisError",
    "ConfigError",
    "ContractError",
    "DivtraceError",
    "FetchError",
    "JudgeError",
    "LineageError",
    "MetricError",
    "MissingFileError",
    "PromptFormatError",
    "SamplingError",
    "SandboxError",
    "ShardError",
    "TaskDataError",
    "UsageError",
]
