"""Structural diversity of code: subtrees of the programs' syntax trees (docs/design.md §5).

What the paper's code-diversity script measured (PAPER.md §8.1), re-implemented:

* **Code** is taken from an answer as the paper's script takes it (:func:`extract_code`): the
  longest fenced block (a fence with an optional ``python`` tag, then a line break), stripped;
  without a fenced block, the answer as it is.
* **Subtrees**: the code is parsed with :func:`ast.parse`; every subtree of height exactly
  :data:`SUBTREE_HEIGHT` (4; a leaf has height 1) is serialised with :func:`ast.dump`, and a
  program is the multiset of its serialised subtrees. Code that does not parse is skipped (it
  counts in ``ast_parseable``, the share of a set's outputs that parse); so is a program with no
  subtree of that height (too small), and a tree deeper than 500 levels (the script's guard).
* ``ast_distinct``: distinct over total subtrees, pooled over the set's programs.
* ``ast_pairwise``: the mean over pairs of programs of the multiset Jaccard distance
  ``1 - Σ min / Σ max``.
* ``ast_struct_pairwise``: ``ast_pairwise`` after anonymising (:func:`anonymise`): every
  identifier the program binds or reads (variables, arguments, functions, classes, import
  aliases) becomes ``_`` unless it names a builtin, and every constant keeps only its type. Two
  programs that differ only in names and literals are then the same program; calls of builtins,
  attribute names (methods) and the control flow still tell programs apart.

Values follow the diversity contract's rule for sets: a set whose programs have no subtree has
no ``ast_distinct``, and one with fewer than two such programs no pairwise value (null).
"""

from __future__ import annotations

import ast
import builtins
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Height of the subtrees compared (a leaf has height 1), as in the paper's script.
SUBTREE_HEIGHT = 4
#: Deeper trees give no subtrees (the paper's script stops at this depth).
MAX_DEPTH = 500
_FENCE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)
_BUILTINS = frozenset(dir(builtins))


def extract_code(text: str) -> str:
    """The code of an answer: its longest fenced block, stripped (the first of equally long
    ones), else the answer unchanged."""
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    return max(blocks, key=len).strip()


def parse(code: str) -> ast.AST | None:
    """The syntax tree of ``code``, or None when it does not parse."""
    try:
        with warnings.catch_warnings():  # invalid escapes in a program's strings are its business
            warnings.simplefilter("ignore")
            return ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


class _Anonymiser(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in _BUILTINS:
            node.id = "_"
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        self.generic_visit(node)
        node.arg = "_"
        return node

    def _named(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> ast.AST:
        self.generic_visit(node)
        node.name = "_"
        return node

    visit_FunctionDef = _named
    visit_AsyncFunctionDef = _named
    visit_ClassDef = _named

    def visit_alias(self, node: ast.alias) -> ast.AST:
        if node.asname is not None:
            node.asname = "_"
        return node

    def visit_Global(self, node: ast.Global) -> ast.AST:
        node.names = ["_" for _ in node.names]
        return node

    visit_Nonlocal = visit_Global  # type: ignore[assignment]

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        self.generic_visit(node)
        if node.name is not None:
            node.name = "_"
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant(value=type(node.value).__name__)


def anonymise(tree: ast.AST) -> ast.AST:
    """``tree`` with identifiers (not builtins) as ``_`` and constants as their type's name
    (changed in place and returned)."""
    return _Anonymiser().visit(tree)


def subtrees(tree: ast.AST, height: int = SUBTREE_HEIGHT) -> Counter[str]:
    """The multiset of the ``ast.dump`` of every subtree of height exactly ``height``.

    Heights are computed once, bottom-up; the search descends only into nodes taller than
    ``height`` (a subtree inside one of that height is not counted again), as the paper's
    script does. A tree deeper than :data:`MAX_DEPTH` gives none."""
    heights: dict[int, int] = {}
    order: list[tuple[ast.AST, int]] = []
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return Counter()
        order.append((node, depth))
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    for node, _depth in reversed(order):
        children = [heights[id(c)] for c in ast.iter_child_nodes(node)]
        heights[id(node)] = 1 + max(children) if children else 1
    found: Counter[str] = Counter()
    todo = [tree]
    while todo:
        node = todo.pop()
        h = heights[id(node)]
        if h == height:
            found[ast.dump(node)] += 1
        elif h > height:
            todo.extend(ast.iter_child_nodes(node))
    return found


@dataclass(frozen=True)
class Programs:
    """The programs of a set of answers: ``parsed`` (how many parse) and the subtree multisets
    of those with subtrees (plain and anonymised)."""

    n_outputs: int
    parsed: int
    plain: list[Counter[str]]
    structure: list[Counter[str]]


def programs(answers: Sequence[str], height: int = SUBTREE_HEIGHT) -> Programs:
    """Parse the code of every answer (:func:`extract_code`) and collect its subtrees."""
    plain: list[Counter[str]] = []
    structure: list[Counter[str]] = []
    parsed = 0
    for answer in answers:
        tree = parse(extract_code(answer))
        if tree is None:
            continue
        parsed += 1
        found = subtrees(tree, height)
        if found:
            plain.append(found)
            structure.append(subtrees(anonymise(tree), height))
    return Programs(len(answers), parsed, plain, structure)


def distinct(multisets: Sequence[Counter[str]]) -> float:
    """Distinct over total subtrees pooled over ``multisets``; NaN without any."""
    pooled: Counter[str] = Counter()
    for m in multisets:
        pooled.update(m)
    total = sum(pooled.values())
    return len(pooled) / total if total else float("nan")


def jaccard_distance(a: Counter[str], b: Counter[str]) -> float:
    """Multiset Jaccard distance ``1 - Σ min / Σ max`` (0 for two empty multisets)."""
    keys = a.keys() | b.keys()
    union = sum(max(a[k], b[k]) for k in keys)
    if not union:
        return 0.0
    return 1.0 - sum(min(a[k], b[k]) for k in keys) / union


def pairwise_matrix(multisets: Sequence[Counter[str]]) -> np.ndarray:
    """Jaccard distances of every pair (symmetric, zero diagonal)."""
    n = len(multisets)
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = jaccard_distance(multisets[i], multisets[j])
    return out


def mean_pairwise(multisets: Sequence[Counter[str]]) -> float:
    """Mean Jaccard distance over the pairs i < j; NaN for fewer than two multisets."""
    n = len(multisets)
    if n < 2:
        return float("nan")
    d = pairwise_matrix(multisets)
    return float(d[np.triu_indices(n, 1)].mean())


def ast_values(answers: Sequence[str], height: int = SUBTREE_HEIGHT) -> dict[str, float]:
    """``ast_distinct``, ``ast_pairwise``, ``ast_struct_pairwise`` and ``ast_parseable`` of one
    set of answers (NaN where undefined: module docstring)."""
    p = programs(answers, height)
    return {
        "ast_distinct": distinct(p.plain),
        "ast_pairwise": mean_pairwise(p.plain),
        "ast_struct_pairwise": mean_pairwise(p.structure),
        "ast_parseable": p.parsed / p.n_outputs if p.n_outputs else float("nan"),
    }


def presence(multisets: Sequence[Counter[str]]) -> tuple[np.ndarray, np.ndarray]:
    """(which programs hold each distinct subtree: items × programs, subtrees per program): the
    input of :func:`divtrace.metrics.fixed_k.distinct_ratio_at_k`."""
    ids: dict[str, int] = {}
    cells = [(ids.setdefault(key, len(ids)), j) for j, m in enumerate(multisets) for key in m]
    out = np.zeros((len(ids), len(multisets)), dtype=bool)
    if cells:
        rows, cols = zip(*cells, strict=True)
        out[list(rows), list(cols)] = True
    return out, np.asarray([sum(m.values()) for m in multisets], dtype=np.int64)
