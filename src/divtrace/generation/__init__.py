"""Sampling: prompt rendering, seeds, backends and the reasoning/answer split."""
