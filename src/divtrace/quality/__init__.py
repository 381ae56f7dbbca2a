"""Correctness of sampled answers on verifiable tasks (DESIGN §6)."""
