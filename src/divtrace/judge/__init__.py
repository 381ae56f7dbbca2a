"""LLM judges for the open-ended tasks (PAPER.md §6.5): protocols, templates, cache, backends.

:mod:`~divtrace.judge.protocols` builds the requests and parses and scores the answers (pure);
:mod:`~divtrace.judge.templates` reads the versioned instruction files (``instructions/``);
:mod:`~divtrace.judge.cache` keys and keeps every answer; :mod:`~divtrace.judge.backends` sends the
requests; :mod:`~divtrace.judge.run` puts them together for ``divtrace judge``.
"""
