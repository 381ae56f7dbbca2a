"""AST code diversity (divtrace.metrics.code) against a transcription of the paper's script.

The reference below transcribes the procedure of the paper's code-diversity script (PAPER.md
§8.1): code from the longest fenced block, height-4 subtrees serialised with ast.dump (a leaf has
height 1, a depth guard of 500), pooled distinct/total, and the mean multiset-Jaccard distance
over pairs of programs; unparseable code skipped. It is run on real HumanEval and MBPP programs
plus programs built in the test (renamed variables, other algorithms, prose around fences).
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from divtrace.metrics import compute_diversity
from divtrace.metrics.code import anonymise, ast_values, extract_code, subtrees


# --------------------------------------------------------------------------- the paper's procedure
def paper_extract(text: str) -> str:
    blocks = re.findall(r"```(?:python)?\s*\n(.*?)```", text, re.DOTALL)
    if not blocks:
        return text
    return max(blocks, key=len).strip()


def paper_height(node: ast.AST, depth: int = 0) -> int:
    if depth > 500:
        return -1
    children = list(ast.iter_child_nodes(node))
    if not children:
        return 1
    heights = [paper_height(c, depth + 1) for c in children]
    if -1 in heights:
        return -1
    return 1 + max(heights)


def paper_subtrees(node: ast.AST, target: int, depth: int = 0) -> list[str]:
    if depth > 500:
        return []
    out: list[str] = []
    h = paper_height(node)
    if h < 0:
        return []
    if h == target:
        out.append(ast.dump(node))
    if h > target:
        for child in ast.iter_child_nodes(node):
            out.extend(paper_subtrees(child, target, depth + 1))
    return out


def paper_ast(outputs: list[str], height: int = 4) -> tuple[float, float, int, int]:
    """(ast_distinct, ast_pairwise, parseable, total) of one prompt's outputs."""
    per_output: list[Counter[str]] = []
    parseable = 0
    for code in [paper_extract(o) for o in outputs]:
        try:
            tree = ast.parse(code)
        except (SyntaxError, MemoryError, RecursionError):
            continue
        parseable += 1
        subs = paper_subtrees(tree, height)
        if subs:
            per_output.append(Counter(subs))
    if not per_output:
        return float("nan"), float("nan"), parseable, len(outputs)
    pooled: Counter[str] = Counter()
    for c in per_output:
        pooled.update(c)
    distinct = len(pooled) / sum(pooled.values())
    dists = []
    for i in range(len(per_output)):
        for j in range(i + 1, len(per_output)):
            keys = set(per_output[i]) | set(per_output[j])
            if not keys:
                continue
            inter = sum(min(per_output[i][k], per_output[j][k]) for k in keys)
            union = sum(max(per_output[i][k], per_output[j][k]) for k in keys)
            dists.append(1.0 - inter / union if union > 0 else 0.0)
    pairwise = float(np.mean(dists)) if dists else float("nan")
    return distinct, pairwise, parseable, len(outputs)


# --------------------------------------------------------------------------- varied programs
def rename_locals(code: str) -> str:
    """The same program with every non-builtin name, argument and function renamed."""
    tree = ast.parse(code)
    names: dict[str, str] = {}

    class Renamer(ast.NodeTransformer):
        def fresh(self, name: str) -> str:
            return names.setdefault(name, f"v{len(names)}_{name[::-1]}")

        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id not in dir(__builtins__) and node.id not in ("True", "False", "None"):
                node.id = self.fresh(node.id)
            return node

        def visit_arg(self, node: ast.arg) -> ast.AST:
            node.arg = self.fresh(node.arg)
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
            self.generic_visit(node)
            node.name = self.fresh(node.name)
            return node

    return ast.unparse(Renamer().visit(tree))


def variants(code: str) -> list[str]:
    """Outputs a model might write for one task: the program fenced with prose, renamed, with a
    changed constant, unparseable, and a different algorithm."""
    renamed = rename_locals(code)
    other = "def helper(items):\n    total = 0\n    for item in items:\n        total += item\n    return total\n"
    return [
        f"Here is my solution:\n```python\n{code}\n```\nIt works.",
        renamed,
        f"```\n{renamed}\n```",
        re.sub(r"\b1\b", "2", code, count=1),
        "def broken(:\n    return",
        f"Short:\n```python\nx = 1\n```\nLong:\n```python\n{other}```",
        code
        + "\n\ndef extra(a, b):\n    if a > b:\n        return [a for _ in range(b)]\n    return {b: a}\n",
    ]


def real_programs(shared_real: Path) -> list[list[str]]:
    sets: list[list[str]] = []
    with open(shared_real / "humaneval.jsonl", encoding="utf-8") as handle:
        for line in list(handle)[:40]:
            record = json.loads(line)
            sets.append(variants(record["prompt"] + record["canonical_solution"]))
    with open(shared_real / "mbpp_test_100.jsonl", encoding="utf-8") as handle:
        for line in list(handle)[:40]:
            sets.append(variants(json.loads(line)["code"].replace("\r\n", "\n")))
    return sets


def test_ast_metrics_equal_the_papers_script_on_real_programs(shared_real):
    sets = real_programs(shared_real)
    differ = 0
    for outputs in sets:
        ours = ast_values(outputs)
        distinct, pairwise, parseable, total = paper_ast(outputs)
        assert ours["ast_distinct"] == pytest.approx(distinct, nan_ok=True, rel=1e-12)
        assert ours["ast_pairwise"] == pytest.approx(pairwise, nan_ok=True, rel=1e-12)
        assert ours["ast_parseable"] == pytest.approx(parseable / total)
        assert 0.0 < ours["ast_parseable"] < 1.0  # the broken variant is skipped, not fatal
        # Renamed copies are different programs to the plain metric, the same to the structural.
        if ours["ast_struct_pairwise"] < ours["ast_pairwise"] - 1e-9:
            differ += 1
    assert differ >= 0.9 * len(sets)  # a few tiny programs have no renamed subtree of height 4


def test_the_reference_discriminates(shared_real):
    """A wrong height, or no fence extraction, gives other values than the paper's procedure."""
    outputs = real_programs(shared_real)[0]
    ref = paper_ast(outputs)
    assert paper_ast(outputs, height=3)[:2] != pytest.approx(ref[:2])
    parse_raw = 0
    for o in outputs:
        try:
            ast.parse(o)
            parse_raw += 1
        except SyntaxError:
            pass
    assert parse_raw < ref[2]


def test_extract_code_longest_block_else_raw():
    text = "a\n```python\nx = 1\n```\nb\n```\nyy = 22\nzz = 3\n```"
    assert extract_code(text) == "yy = 22\nzz = 3"
    assert extract_code("def f():\n    return 1") == "def f():\n    return 1"
    assert extract_code("```python\nx = 1\n```") == "x = 1"


def test_renaming_is_not_structural_diversity():
    a = "def add(a, b):\n    total = a + b\n    return total * 2\n"
    b = "def plus(x, y):\n    s = x + y\n    return s * 3\n"
    c = "def add(a, b):\n    return sorted([a, b])[0] * len([a])\n"
    values = ast_values([a, b])
    assert values["ast_pairwise"] > 0.5
    assert values["ast_struct_pairwise"] == 0.0
    assert ast_values([a, c])["ast_struct_pairwise"] > 0.0
    # builtins keep their names: sorted and len are not anonymised
    dumped = ast.dump(anonymise(ast.parse(c)))
    assert "sorted" in dumped and "len" in dumped and "'add'" not in dumped


def test_subtrees_of_a_small_tree():
    # Module > Expr > Name > Load: height 4, exactly one subtree
    assert sum(subtrees(ast.parse("x")).values()) == 1
    assert subtrees(ast.parse("x"), height=5) == Counter()
    assert subtrees(ast.parse("x = (" * 1 + "1" + ")" * 1), height=4)


def generations(task: str, outputs: list[list[str]]) -> pl.DataFrame:
    rows = [
        {"model": "m", "task": task, "cot": "on", "prompt_id": f"p{i}", "sample": j, "answer": a}
        for i, outs in enumerate(outputs)
        for j, a in enumerate(outs)
    ]
    return pl.DataFrame(rows)


def test_compute_diversity_runs_ast_metrics_on_code_tasks_only():
    a = "def add(a, b):\n    total = a + b\n    return total * 2\n"
    b = "def plus(x, y):\n    s = x + y\n    return s * 3\n"
    metrics = ["ast_distinct", "ast_pairwise", "ast_struct_pairwise", "ast_parseable", "ead"]
    code = compute_diversity(generations("mbpp", [[a, b, "not code ("]]), metrics)
    per_input = code.filter(pl.col("scope") == "per_input")
    got = dict(zip(per_input["metric"], per_input["value"], strict=True))
    ref = ast_values([a, b, "not code ("])
    for name in metrics[:4]:
        assert got[name] == pytest.approx(ref[name])
    assert got["ast_parseable"] == pytest.approx(2 / 3)
    # A task of another family: the code metrics have no rows, the others do.
    text = compute_diversity(generations("gsm8k", [[a, b]]), metrics)
    assert set(text["metric"]) == {"ead"}
    # A task named otherwise but of a code family, through families.
    named = compute_diversity(
        generations("he_small", [[a, b]]), metrics, families={"he_small": "humaneval"}
    )
    assert set(named["metric"]) == set(metrics)


def test_code_metrics_end_to_end_through_the_cli_on_real_programs(shared_real, tmp_path):
    """divtrace diversity (code family, k grid) then divtrace summarize: the code metrics of
    real HumanEval programs reach the diversity table with bootstrap intervals, and the rows at
    fixed k the diversity_k table; a text task of the same study gets no code cells."""
    from divtrace import io
    from divtrace.cli import main

    sets = real_programs(shared_real)[:12]
    models = {"base": {"stage": "base"}, "sft": {"parent": "base", "stage": "sft"}}
    diversity_files = []
    for model, keep in (("base", 7), ("sft", 4)):
        for task, family in (("he", "humaneval"), ("tldr", "tldr")):
            rows = [
                {
                    "model": model,
                    "task": task,
                    "cot": "on",
                    "prompt_id": f"{task}/{i}",
                    "sample": j,
                    "answer": answer,
                }
                for i, outputs in enumerate(sets)
                for j, answer in enumerate(outputs[:keep])
            ]
            gen = tmp_path / f"gen-{model}-{task}.parquet"
            io.write_table(
                pl.DataFrame(rows).with_columns(
                    seed=pl.col("sample"),
                    prompt_text=pl.lit(""),
                    raw=pl.col("answer"),
                    reasoning=pl.lit(None, pl.String),
                    think_closed=pl.lit(None, pl.Boolean),
                    n_tokens=pl.lit(1),
                    finish_reason=pl.lit("stop"),
                    backend=pl.lit("test"),
                ),
                gen,
                "generations",
            )
            out = tmp_path / f"div-{model}-{task}.parquet"
            metrics = "ead,ast_distinct,ast_pairwise,ast_struct_pairwise,ast_parseable"
            code = main(
                [
                    "diversity",
                    "--generations",
                    str(gen),
                    "--out",
                    str(out),
                    "--metrics",
                    metrics,
                    "--family",
                    family,
                    "--k-grid",
                    "2,4",
                ]
            )
            assert code == 0
            diversity_files.append(str(out))
    written = io.read_table(diversity_files[0])
    ref = ast_values(sets[0][:7])
    got = written.filter(
        (pl.col("prompt_id") == "he/0")
        & pl.col("k").is_null()
        & (pl.col("metric") == "ast_pairwise")
    )["value"].item()
    assert got == pytest.approx(ref["ast_pairwise"])
    out_dir = tmp_path / "tables"
    runs = json.dumps([[m, t, "on", False] for m in models for t in ("he", "tldr")])
    code = main(
        [
            "summarize",
            "--diversity",
            *diversity_files,
            "--lineage",
            json.dumps(models),
            "--out-dir",
            str(out_dir),
            "--n-boot",
            "100",
            "--runs",
            runs,
        ]
    )
    assert code == 0
    table = io.read_table(out_dir / "diversity.parquet")
    code_rows = table.filter(pl.col("metric").str.starts_with("ast_"))
    assert set(code_rows["task"]) == {"he"}  # no code cells for the text task, not even null ones
    per_input = code_rows.filter(pl.col("scope") == "per_input")
    assert per_input["ci_low"].null_count() == 0 and per_input.height == 2 * 4
    assert (per_input["ci_low"] <= per_input["value"]).all()
    at_k = io.read_table(out_dir / "diversity_k.parquet")
    assert set(at_k.filter(pl.col("task") == "he")["metric"]) == {
        "ead",
        "ast_distinct",
        "ast_pairwise",
        "ast_struct_pairwise",
        "ast_parseable",
    }
    missing = io.read_table(out_dir / "missing.parquet")
    assert missing.filter(pl.col("metric").str.starts_with("ast_")).is_empty()
