"""Correctness of sampled answers on verifiable tasks (docs/design.md §6)."""
