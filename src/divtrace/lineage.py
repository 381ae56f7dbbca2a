"""The lineage tree: which checkpoint was trained from which, and how to lay stages out in plots.

A lineage is a path from the root checkpoint (the base model) to a leaf, following the ``parent``
links of the config. Each non-root checkpoint names the lineage it belongs to (``lineage:``, e.g.
``think``); a checkpoint without one inherits its parent's. The root belongs to every lineage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from divtrace.errors import LineageError

# Conventional order of post-training stages on plot axes; unknown stages sort after these.
STAGE_ORDER = ("base", "sft", "dpo", "rl", "rlzero")


@dataclass(frozen=True)
class Checkpoint:
    name: str
    parent: str | None
    stage: str
    lineage: str | None
    reasoning: bool


@dataclass(frozen=True)
class Lineage:
    """Checkpoints keyed by name, with parent links forming a single-rooted tree."""

    checkpoints: dict[str, Checkpoint]

    @classmethod
    def from_models(cls, models: Mapping[str, Mapping[str, Any]]) -> Lineage:
        """Build from ``config['models']``; raises :class:`LineageError` naming the bad key."""
        checkpoints: dict[str, Checkpoint] = {}
        for name, spec in models.items():
            parent = spec.get("parent")
            if parent is not None and parent not in models:
                raise LineageError(
                    f"models.{name}.parent: {parent!r} is not a model in config 'models' "
                    f"(known: {sorted(models)})"
                )
            checkpoints[name] = Checkpoint(
                name=name,
                parent=parent,
                stage=str(spec.get("stage", "base" if parent is None else "post")),
                lineage=spec.get("lineage"),
                reasoning=bool(spec.get("reasoning", False)),
            )
        lineage = cls(checkpoints)
        lineage._check_tree()
        return lineage

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Lineage:
        """Inverse of :meth:`to_dict` (used to pass the tree to CLI steps as JSON)."""
        return cls.from_models(data)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {
            c.name: {
                "parent": c.parent,
                "stage": c.stage,
                "lineage": c.lineage,
                "reasoning": c.reasoning,
            }
            for c in self.checkpoints.values()
        }

    def _check_tree(self) -> None:
        roots = [c.name for c in self.checkpoints.values() if c.parent is None]
        if len(roots) != 1:
            raise LineageError(
                f"config 'models' must have exactly one root (a model without 'parent'); found {roots}"
            )
        for name in self.checkpoints:
            seen = {name}
            current = self.checkpoints[name].parent
            while current is not None:
                if current in seen:
                    raise LineageError(f"models.{name}.parent: the parent links form a cycle")
                seen.add(current)
                current = self.checkpoints[current].parent

    @property
    def root(self) -> str:
        return next(c.name for c in self.checkpoints.values() if c.parent is None)

    def ancestors(self, name: str) -> list[str]:
        """Path from the root to ``name``, both included."""
        path = [name]
        while (parent := self.checkpoints[path[-1]].parent) is not None:
            path.append(parent)
        return path[::-1]

    def depth(self, name: str) -> int:
        return len(self.ancestors(name)) - 1

    def children(self, name: str) -> list[str]:
        return [c.name for c in self.checkpoints.values() if c.parent == name]

    def lineage_of(self, name: str) -> str | None:
        """The lineage label of a checkpoint (inherited from the nearest labelled ancestor)."""
        for ancestor in reversed(self.ancestors(name)):
            label = self.checkpoints[ancestor].lineage
            if label is not None:
                return label
        return None

    def leaves(self) -> list[str]:
        return [c for c in self.checkpoints if not self.children(c)]

    def lineages(self) -> dict[str, list[str]]:
        """Lineage label → ordered checkpoints from the root to its last stage.

        Checkpoints of one label that branch (two children with the same label) are laid out along
        the branch that reaches deepest; this keeps one line per lineage in trajectory plots.
        """
        paths: dict[str, list[str]] = {}
        for leaf in self.leaves():
            label = self.lineage_of(leaf) or leaf
            path = self.ancestors(leaf)
            if label not in paths or len(path) > len(paths[label]):
                paths[label] = path
        return dict(sorted(paths.items()))

    def stage_rank(self, name: str) -> int:
        stage = self.checkpoints[name].stage
        return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
