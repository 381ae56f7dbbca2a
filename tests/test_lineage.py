from __future__ import annotations

import pytest

from divtrace.lineage import Lineage, LineageError

MODELS = {
    "base": {"stage": "base"},
    "think-sft": {"parent": "base", "stage": "sft", "lineage": "think", "reasoning": True},
    "think-dpo": {"parent": "think-sft", "stage": "dpo"},
    "instruct-sft": {"parent": "base", "stage": "sft", "lineage": "instruct"},
    "rlzero-math": {"parent": "base", "stage": "rlzero", "lineage": "rlzero"},
}


def test_tree_queries():
    tree = Lineage.from_models(MODELS)
    assert tree.root == "base"
    assert tree.ancestors("think-dpo") == ["base", "think-sft", "think-dpo"]
    assert tree.depth("think-dpo") == 2
    assert tree.lineage_of("think-dpo") == "think"  # inherited from its parent
    assert tree.lineage_of("base") is None
    assert tree.lineages() == {
        "instruct": ["base", "instruct-sft"],
        "rlzero": ["base", "rlzero-math"],
        "think": ["base", "think-sft", "think-dpo"],
    }
    assert tree.stage_rank("base") < tree.stage_rank("think-dpo")


def test_round_trip_through_dict():
    tree = Lineage.from_models(MODELS)
    assert Lineage.from_dict(tree.to_dict()) == tree


def test_missing_parent_is_named():
    with pytest.raises(LineageError, match=r"models\.x\.parent: 'y'"):
        Lineage.from_models({"base": {}, "x": {"parent": "y"}})


def test_cycle_is_rejected():
    with pytest.raises(LineageError):
        Lineage.from_models({"base": {}, "a": {"parent": "b"}, "b": {"parent": "a"}})
