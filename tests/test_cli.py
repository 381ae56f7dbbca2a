"""The command line: one module per subcommand, defaults from the config schema, input errors
in one line and bugs with their traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from divtrace import cli
from divtrace.cli import build_parser, main
from divtrace.config import validate_config
from divtrace.errors import ConfigError

from .conftest import REPO

MINIMAL = {
    "models": {"base": {"source": "toy", "toy": {"recipe": "pretrain"}}},
    "tasks": {"gsm8k": {"source": "resources/tasks/demo/gsm8k.jsonl", "n_prompts": 2,
                        "max_tokens": 8}},
}  # fmt: skip


@pytest.fixture(scope="module")
def defaults() -> dict:
    """What the workflow uses where a config says nothing: the schema's defaults, filled in."""
    import copy
    import os

    old = os.getcwd()
    os.chdir(REPO)
    try:
        return validate_config(copy.deepcopy(MINIMAL))
    finally:
        os.chdir(old)


def parse(*args: str):
    return build_parser().parse_args(list(args))


def test_every_subcommand_has_its_module_with_parser_and_handler():
    names = [command.NAME for command in cli.COMMANDS]
    assert names == [
        "fetch-model", "fetch-metric-model", "prompts", "sample", "score", "judge", "diversity",
        "summarize", "figures", "plan", "verify",
    ]  # fmt: skip
    for command in cli.COMMANDS:
        assert callable(command.add_arguments) and callable(command.run), command.NAME
        assert command.__name__ == f"divtrace.cli.{command.NAME.replace('-', '_')}"


def test_sample_run_by_hand_samples_as_the_workflow_does(defaults):
    args = parse(
        "sample", "--prompts", "p", "--manifest", "m", "--model", "x", "--task", "gsm8k",
        "--shard", "0", "--prompts-per-shard", "4", "--k", "4", "--seed", "1",
        "--format", "chat", "--temperature", "0.6", "--max-tokens", "8", "--out", "o",
    )  # fmt: skip
    sampling = defaults["sampling"]
    assert args.top_p == sampling["top_p"] == 0.95  # was 1.0 by hand, 0.95 in the workflow
    assert args.top_k == sampling["top_k"]
    assert args.prefill == sampling["cot_off_prefill"]
    assert args.backend == sampling["backend"]
    assert (args.device, args.dtype) == (sampling["device"], sampling["dtype"])
    assert (args.threads, args.batch_rows) == (sampling["threads"], sampling["batch_rows"])


def test_measures_prompts_and_tables_take_the_schema_defaults(defaults):
    args = parse("diversity", "--generations", "g", "--out", "o")
    metrics = defaults["metrics"]
    assert args.metrics == metrics["names"]
    assert (args.sbert_model, args.nli_model) == (metrics["sbert_model"], metrics["nli_model"])
    assert (args.ead_vocab_size, args.device) == (metrics["ead_vocab_size"], metrics["device"])
    assert args.ead_tokenize == metrics["ead_tokenize"] == "words"
    assert args.nli_max_length == metrics["nli_max_length"] == 512
    assert parse("prompts", "--task", "t", "--source", "s", "--out", "o").seed == defaults["seed"]
    summary = parse("summarize", "--diversity", "d", "--lineage", "{}", "--out-dir", "o")
    assert (summary.n_boot, summary.seed) == (
        defaults["analysis"]["n_boot"],
        defaults["analysis"]["seed"],
    )
    assert summary.equivalence_margin == defaults["analysis"]["equivalence_margin"]
    fetch = parse("fetch-metric-model", "--role", "sbert", "--model", "m", "--out-dir", "o")
    assert fetch.revision == metrics["sbert_revision"] == metrics["nli_revision"]


def test_summarize_passes_the_equivalence_margin_to_the_cot_table(defaults, tmp_path):
    """(e) The margin of the workflow (the schema's default), of a command run by hand and of the
    library are one number; a margin given on the command line reaches the CoT table."""
    import json

    import polars as pl

    from divtrace import io
    from divtrace.analysis import cot

    default = parse("summarize", "--diversity", "d", "--lineage", "{}", "--out-dir", "o")
    assert default.equivalence_margin == defaults["analysis"]["equivalence_margin"] == 0.05
    assert default.equivalence_margin == cot.DEFAULT_EQUIVALENCE_MARGIN
    models = {
        "base": {"stage": "base"},
        "sft": {"parent": "base", "stage": "sft", "reasoning": True},
    }
    spread = [0.65, 0.35] * 10  # CoT on − off = ±0.3 per prompt, 0 on average
    rows = [
        dict(model=model, task="gsm8k", cot=cot_mode, scope="per_input", subset="all",
             prompt_id=f"gsm8k/{i}", metric="sbert", value=value, n_outputs=4, n_dropped=0)
        for model, cot_mode, values in [
            ("base", "on", spread), ("sft", "on", spread), ("sft", "off", [*spread[1:], 0.65]),
        ]
        for i, value in enumerate(values)
    ]  # fmt: skip
    diversity = tmp_path / "diversity.parquet"
    io.write_table(pl.from_dicts(rows), diversity, "diversity")
    lineage = json.dumps(models)
    verdicts = {}
    for margin in ("0.05", "0.8"):
        out = tmp_path / f"tables-{margin}"
        args = ["--diversity", str(diversity), "--lineage", lineage, "--n-boot", "200"]
        code = main(["summarize", *args, "--out-dir", str(out), "--equivalence-margin", margin])
        assert code == 0
        table = io.read_table(out / "cot.parquet")
        assert io.read_metadata(out / "cot.parquet")["equivalence_margin"] == float(margin)
        verdicts[margin] = table.filter(scope="per_input")["verdict"].to_list()
    assert verdicts == {"0.05": ["undecided"], "0.8": ["equivalent"]}
    with pytest.raises(SystemExit):
        parse("summarize", "--diversity", "d", "--lineage", "{}", "--out-dir", "o",
              "--equivalence-margin", "wide")  # fmt: skip


def test_an_input_error_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["plan", "--configfile", str(tmp_path / "none.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "none.yaml" in err and "Traceback" not in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    def broken(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(cli.plan, "run", broken)
    with pytest.raises(ValueError, match="internal invariant"):
        main(["plan"])


def test_input_errors_keep_their_traceback_in_debug_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("DIVTRACE_DEBUG", "1")
    with pytest.raises((ConfigError, FileNotFoundError)):
        main(["plan", "--configfile", str(tmp_path / "none.yaml")])


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "divtrace.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "fetch-model" in result.stdout


def test_summarize_reads_each_tasks_family_from_the_quality_files(tmp_path):
    # ``divtrace score`` records task and family in a quality file's metadata; majority@K needs the
    # family (its answer equivalence), and the tables key on the task.
    from divtrace import io
    from divtrace.cli.summarize import quality_families
    from divtrace.errors import ContractError

    empty = io.empty_frame("quality")
    paths = []
    for name, meta in [
        ("a", {"task": "gsm8k_small", "family": "gsm8k"}),
        ("b", {"task": "gsm8k_small", "family": "gsm8k"}),
        ("c", {"task": "crux", "family": "cruxeval"}),
        ("d", {}),
    ]:
        path = tmp_path / f"{name}.parquet"
        io.write_table(empty, path, "quality", metadata=meta)
        paths.append(str(path))
    assert quality_families(paths) == {"gsm8k_small": "gsm8k", "crux": "cruxeval"}
    other = tmp_path / "e.parquet"
    io.write_table(empty, other, "quality", metadata={"task": "crux", "family": "gsm8k"})
    with pytest.raises(ContractError, match="crux"):
        quality_families([*paths, str(other)])
