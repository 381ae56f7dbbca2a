"""One error type: the user's mistakes are DivtraceErrors (named, no traceback); bugs are not."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from divtrace import errors, io
from divtrace.errors import (
    AnalysisError,
    ConfigError,
    ContractError,
    DivtraceError,
    JudgeError,
    MetricError,
    MissingFileError,
    ShardError,
    TaskDataError,
)
from divtrace.lineage import Lineage

LINEAGE = Lineage.from_models({"base": {}, "sft": {"parent": "base", "stage": "sft"}})


def _generations() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": ["base"] * 4,
            "task": ["gsm8k"] * 4,
            "cot": ["on"] * 4,
            "prompt_id": ["p0", "p0", "p1", "p1"],
            "sample": [0, 1, 0, 1],
            "answer": ["one two", "three four", "five", "six seven"],
        }
    )


# --------------------------------------------------------------------------------- the classes


def _error_classes() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == errors.__name__
    ]


def test_every_error_class_is_a_divtrace_error_and_exported() -> None:
    classes = _error_classes()
    assert len(classes) >= 15
    for cls in classes:
        assert issubclass(cls, DivtraceError), cls
        assert cls.__name__ in errors.__all__, cls
    assert sorted(errors.__all__) == sorted(cls.__name__ for cls in classes)


@pytest.mark.parametrize(
    "cls", [c for c in _error_classes() if c is not errors.DivtraceError], ids=lambda c: c.__name__
)
def test_every_subclass_also_is_a_builtin_error(cls: type[BaseException]) -> None:
    # ``except ValueError`` (FileNotFoundError, RuntimeError) around a library call keeps working.
    assert issubclass(cls, ValueError | FileNotFoundError | RuntimeError), cls


def test_lineage_errors_are_config_errors() -> None:
    assert issubclass(errors.LineageError, ConfigError)


# --------------------------------------------------------------------------- user mistakes


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)  # the demo config's task sources are relative to the repository
    return repo


def test_bad_config_key_is_a_config_error(in_repo: Path, demo_config: dict) -> None:
    from divtrace.config import validate_config

    config = copy.deepcopy(demo_config)
    config["sampling"]["temperature"] = "hot"
    with pytest.raises(ConfigError, match=r"config key sampling\.temperature"):
        validate_config(config)


def test_missing_or_unreadable_config_file(tmp_path: Path) -> None:
    from divtrace.config import load_config

    with pytest.raises(MissingFileError, match=r"nope\.yaml: no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML") as err:
        load_config(bad)
    assert "\n" not in str(err.value)  # one line


def test_bad_toy_block_names_its_config_key(tmp_path: Path) -> None:
    from divtrace.models import build_toy

    spec = {"source": "toy", "toy": {"recipe": "pretrain", "lr": 5}}
    with pytest.raises(ConfigError, match=r"config key models\.tiny\.toy\.lr: expected a number"):
        build_toy("tiny", spec, tmp_path / "tiny", None)
    assert not (tmp_path / "tiny").exists()


def test_unknown_metric_is_a_metric_error() -> None:
    from divtrace.metrics.api import check_metrics, compute_diversity

    with pytest.raises(MetricError, match="unknown diversity metric 'bleu'"):
        check_metrics(["ead", "bleu"])
    with pytest.raises(MetricError, match="no diversity metric requested"):
        check_metrics([])
    with pytest.raises(MetricError, match="ead-vocab-size"):
        compute_diversity(_generations(), ["ead"], ead_vocab_size=0)


def test_generations_lacking_a_column_are_a_contract_error() -> None:
    from divtrace.metrics.api import compute_diversity

    with pytest.raises(ContractError, match=r"generations table lacks column\(s\) \['answer'\]"):
        compute_diversity(_generations().drop("answer"), ["ead"])


def test_sbert_model_that_is_not_a_model_is_a_metric_error(tmp_path: Path) -> None:
    from divtrace.metrics.embeddings import Embedder

    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricError, match=r"SBERT model '.*empty'.*cannot be loaded"):
        Embedder(str(tmp_path / "empty"), device="cpu").embed(["a text"])


def test_diversity_table_lacking_a_column_is_a_contract_error() -> None:
    from divtrace.analysis import summarize_diversity
    from divtrace.metrics.api import compute_diversity

    diversity = compute_diversity(_generations(), ["ead"])
    with pytest.raises(ContractError, match=r"diversity table lacks column\(s\) \['value'\]"):
        summarize_diversity(diversity.drop("value"), LINEAGE)
    ghost = diversity.with_columns(model=pl.lit("ghost"))
    with pytest.raises(AnalysisError, match=r"'ghost'.*not in the lineage"):
        summarize_diversity(ghost, LINEAGE)


def test_bad_bootstrap_options_are_analysis_errors() -> None:
    from divtrace.analysis.bootstrap import bootstrap_mean

    with pytest.raises(AnalysisError, match="seed"):
        bootstrap_mean(np.ones(3), seed=-1)
    with pytest.raises(AnalysisError, match="n_boot"):
        bootstrap_mean(np.ones(3), n_boot=-1)


def test_missing_parquet_file_is_a_missing_file_error(tmp_path: Path) -> None:
    for read in (io.read_table, io.read_metadata, lambda p: io.read_tables([p], "diversity")):
        with pytest.raises(MissingFileError, match=r"gone\.parquet: no such file"):
            read(tmp_path / "gone.parquet")


def test_task_record_lacking_a_field_is_a_task_data_error(tmp_path: Path) -> None:
    from divtrace.tasks import get_family
    from divtrace.tasks.prompts import load_records

    family = get_family("gsm8k")
    with pytest.raises(TaskDataError, match=r"data\.jsonl record 3: gsm8k record lacks field"):
        family.check_record({"question": "1 + 1?"}, "data.jsonl record 3")
    with pytest.raises(MissingFileError, match=r"nope\.jsonl: no such file"):
        load_records(str(tmp_path / "nope.jsonl"), family)


def test_judge_reference_lacking_keys_is_a_judge_error() -> None:
    from divtrace.quality.exact import judge_cruxeval, judge_truthfulqa
    from divtrace.quality.ifeval import judge_ifeval
    from divtrace.quality.math import judge_math

    prompt = {"prompt_id": "t/7"}
    for judge in (judge_math, judge_cruxeval, judge_truthfulqa, judge_ifeval):
        with pytest.raises(JudgeError, match=r"prompt 't/7': .*reference"):
            judge(["an answer"], [{}], [prompt])
    bad_kwargs = {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]}
    with pytest.raises(JudgeError, match="prompt 't/7': 1 instruction ids but 2 kwargs"):
        judge_ifeval(["an answer"], [bad_kwargs], [prompt])


def test_scoring_prompts_with_a_broken_reference_is_a_contract_error() -> None:
    from divtrace.quality.score import score_generations

    prompts = pl.DataFrame({"prompt_id": ["p0", "p1"], "reference": ["{not json", "{}"]})
    with pytest.raises(ContractError, match="prompt 'p0': reference is not valid JSON"):
        score_generations("gsm8k", prompts, _generations())


def test_zero_samples_per_prompt_is_a_shard_error() -> None:
    from divtrace.generation.sample import ShardSpec, sample_shard

    spec = ShardSpec(
        model="base",
        task="gsm8k",
        cot="on",
        shard=0,
        prompts_per_shard=4,
        k=0,
        seed=0,
        prompt_format="chat",
        reasoning=False,
        prefill="",
    )
    with pytest.raises(ShardError, match=r"k .*at least 1, got 0"):
        sample_shard(io.empty_frame("prompts"), spec, None, None, {})  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- bugs


class _WrongShapeEmbedder:
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts) + 1, 3))


def test_an_embedder_returning_the_wrong_shape_is_not_a_user_error() -> None:
    from divtrace.metrics.api import compute_diversity

    with pytest.raises(ValueError, match="embedder returned shape") as err:
        compute_diversity(_generations(), ["sbert"], embedder=_WrongShapeEmbedder())
    assert not isinstance(err.value, DivtraceError)


def test_a_judge_returning_the_wrong_number_of_verdicts_is_not_a_user_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from divtrace.quality import score

    monkeypatch.setattr(score, "get_judge", lambda family: lambda answers, refs, prompts: [])
    prompts = pl.DataFrame({"prompt_id": ["p0", "p1"], "reference": ["{}", "{}"]})
    with pytest.raises(RuntimeError, match="returned 0 verdicts") as err:
        score.score_generations("gsm8k", prompts, _generations())
    assert not isinstance(err.value, DivtraceError)


def test_a_batch_judge_called_with_unmatched_lists_is_not_a_user_error() -> None:
    from divtrace.quality.math import judge_math

    with pytest.raises(ValueError, match="2 answers, 1 references") as err:
        judge_math(["a", "b"], [{}], [{}])
    assert not isinstance(err.value, DivtraceError)
