from __future__ import annotations

import copy

import pytest

from divtrace.config import ConfigError, Study, load_config, validate_config


@pytest.fixture(autouse=True)
def _in_repo(repo, monkeypatch):
    monkeypatch.chdir(repo)  # task sources are relative to the workflow directory


def test_demo_config_is_valid_and_gets_defaults(demo_config):
    demo_config.pop("metrics")
    config = validate_config(demo_config)
    assert config["metrics"]["names"] == ["ead", "sbert", "vendi"]
    assert config["metrics"]["ead_vocab_size"] == 50257
    assert config["metrics"]["nli_max_length"] == 512
    assert config["models"]["base"]["format"] == "completion"
    assert config["models"]["instruct-sft"]["reasoning"] is False


def test_load_config_reads_yaml(repo):
    config = load_config(repo / "config" / "config.yaml")
    assert set(config["models"]) >= {"base", "think-sft", "instruct-sft"}


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c.update(colour="blue"), "<top level>"),
        (lambda c: c["models"]["base"].update(weights="x"), "models.base"),
        (lambda c: c["sampling"].update(temperature="hot"), "sampling.temperature"),
        (lambda c: c["sampling"].update(k=0), "sampling.k"),
        (lambda c: c["tasks"]["gsm8k"].update(n_prompts=0), "tasks.gsm8k.n_prompts"),
        (lambda c: c["tasks"]["gsm8k"].pop("max_tokens"), "tasks.gsm8k"),
        (lambda c: c["models"]["think-sft"].update(parent="nowhere"), "models.think-sft.parent"),
        (lambda c: c["models"]["base"].update(source="s3"), "models.base.source"),
        (lambda c: c["models"]["base"].pop("toy"), "models.base"),
        (lambda c: c["metrics"].update(names=["ead", "bleu"]), "metrics.names.1"),
        (lambda c: c["metrics"].update(nli_max_length=1), "metrics.nli_max_length"),
        (lambda c: c["tasks"]["gsm8k"].update(family="chess"), "tasks.gsm8k.family"),
        (
            lambda c: c["tasks"]["gsm8k"].update(source="resources/tasks/demo/none.jsonl"),
            "tasks.gsm8k.source",
        ),
        (lambda c: c["models"]["base"].update(reasoning=True), "models.base"),
    ],
)
def test_bad_config_names_the_key(demo_config, mutate, key):
    config = copy.deepcopy(demo_config)
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert key in str(err.value)


def test_task_with_empty_source_is_rejected(demo_config, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    demo_config["tasks"]["gsm8k"]["source"] = str(empty)
    with pytest.raises(ConfigError, match=r"tasks\.gsm8k\.source: .* has no prompts"):
        validate_config(demo_config)


def test_two_roots_are_rejected(demo_config):
    del demo_config["models"]["think-sft"]["parent"]
    with pytest.raises(ConfigError, match="exactly one root"):
        validate_config(demo_config)


def test_study_enumerates_the_job_space(demo_config):
    study = Study(validate_config(demo_config))
    assert study.cot_modes("think-sft") == ["on", "off"]
    assert study.cot_modes("base") == ["on"]
    assert study.n_shards("gsm8k") == 1  # 8 prompts, 8 per shard
    assert study.shards("gsm8k") == ["0000"]
    smaller = validate_config({**demo_config, "sampling": {"prompts_per_shard": 3}})
    assert Study(smaller).shards("gsm8k") == ["0000", "0001", "0002"]  # ceil(8 / 3)
    runs = study.runs()
    # base, rlzero-math and three instruct checkpoints once; three think ones with CoT on and off.
    assert len(runs) == (1 + 1 + 3 + 3 * 2) * 3
    assert ("think-sft", "ifeval", "off") in runs
    assert ("think-rl", "ifeval", "off") in runs
    assert ("instruct-sft", "ifeval", "off") not in runs
    assert ("rlzero-math", "gsm8k", "off") not in runs


def test_shard_count_rounds_up(demo_config):
    demo_config["tasks"]["gsm8k"]["n_prompts"] = 9
    demo_config["sampling"]["prompts_per_shard"] = 4
    study = Study(validate_config(demo_config))
    assert study.n_shards("gsm8k") == 3  # 4 + 4 + 1


def test_config_import_is_cheap():
    """The Snakefile imports divtrace.config, .plan and .names at parse time: no torch,
    transformers, vLLM or any dataframe or array library."""
    import subprocess
    import sys

    code = (
        "import sys, divtrace.config, divtrace.plan, divtrace.names; "
        "heavy = ('torch', 'transformers', 'vllm', 'pandas', 'polars', 'pyarrow', 'numpy'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_cot_off_false_samples_a_reasoning_model_with_cot_on_only(demo_config):
    demo_config["models"]["think-sft"]["cot_off"] = False
    study = Study(validate_config(demo_config))
    assert study.cot_modes("think-sft") == ["on"]
    assert study.cot_modes("think-dpo") == ["on", "off"]
    assert ("think-sft", "gsm8k", "off") not in study.runs()


def test_cot_off_applies_to_reasoning_models_only(demo_config):
    demo_config["models"]["instruct-sft"]["cot_off"] = False
    with pytest.raises(ConfigError, match=r"models\.instruct-sft\.cot_off"):
        validate_config(demo_config)


def test_a_completion_format_reasoning_model_needs_cot_off_false(demo_config):
    demo_config["models"]["rlzero-math"]["reasoning"] = True
    with pytest.raises(ConfigError, match=r"models\.rlzero-math: .*cot_off: false"):
        validate_config(demo_config)
    demo_config["models"]["rlzero-math"]["cot_off"] = False
    assert Study(validate_config(demo_config)).cot_modes("rlzero-math") == ["on"]


def _duplicated_model_config(repo, dest):
    """The demo config with a second ``think-sft:`` entry (an instruct model) after the first:
    the path and the lines of the two keys."""
    lines = (repo / "config" / "config.yaml").read_text(encoding="utf-8").splitlines()
    first = lines.index("  think-sft:") + 1
    end = lines.index("  instruct-sft:")
    twin = ["  think-sft:", "    source: toy", "    parent: base", "    format: chat"]
    lines[end:end] = twin
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest, first, end + 1


def test_duplicated_key_is_refused_naming_both_lines(repo, tmp_path):
    path, first, second = _duplicated_model_config(repo, tmp_path / "dup.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "'think-sft'" in message and str(path) in message
    assert f"line {first}" in message and f"line {second}" in message


def test_duplicated_key_is_refused_at_any_depth_and_in_an_overlay(repo, tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("sampling:\n  k: 4\n  temperature: 1.0\n  k: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'k' given twice, at line 2 and line 4"):
        load_config([repo / "config" / "config.yaml", overlay])


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    from divtrace.config import read_yaml

    path = tmp_path / "merge.yaml"
    path.write_text("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 3\n", encoding="utf-8")
    assert read_yaml(path) == {"a": {"k": 1, "j": 2}, "b": {"k": 3, "j": 2}}


def test_a_non_utf8_task_file_passes_the_config_check(demo_config, tmp_path):
    # The config only checks the file has a line; the prompts step names the bad byte's line
    # (divtrace.tasks.prompts.read_jsonl), where before a UnicodeDecodeError broke parsing.
    source = tmp_path / "latin1.jsonl"
    source.write_bytes(b'{"question": "caf\xe9?", "answer": "#### 3"}\n')
    demo_config["tasks"]["gsm8k"]["source"] = str(source)
    validate_config(demo_config)


@pytest.mark.parametrize("results", ["/etc", "../elsewhere", "results/../../up"])
def test_results_outside_the_working_directory_needs_an_opt_in(demo_config, results):
    demo_config["results"] = results
    with pytest.raises(ConfigError, match=r"config key results: .* is outside the working dir"):
        validate_config(copy.deepcopy(demo_config))
    demo_config["allow_results_outside"] = True
    assert validate_config(demo_config)["results"] == results


@pytest.mark.parametrize("results", ["results", "out/study-1", "./results"])
def test_results_inside_the_working_directory_need_nothing(demo_config, repo, results):
    demo_config["results"] = results
    validate_config(demo_config)
    demo_config["results"] = str(repo / results)  # absolute, but inside
    assert validate_config(demo_config)["allow_results_outside"] is False
