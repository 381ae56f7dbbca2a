"""Typed, validated view of the workflow configuration.

The Snakefile and the CLI both go through :func:`validate_config`: JSON-schema validation (with the
schema's defaults filled in) followed by the checks a schema cannot express (parent links form a
tree, every task has prompts, task families exist). Errors name the offending key.

This module is imported at Snakefile parse time: it must stay free of heavy imports.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from divtrace.errors import ConfigError, MissingFileError
from divtrace.lineage import Lineage, LineageError
from divtrace.names import (
    CODE_EMBEDDING_METRICS,
    CONFIG_SCHEMA,
    EMBEDDING_METRICS,
    JUDGE_BASE_OPPONENT,
    JUDGE_TASK_PROTOCOLS,
)

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / CONFIG_SCHEMA


def _key_path(parts: Iterator[Any] | list[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _with_defaults(validator_class: Any) -> Any:
    """A validator class that fills in ``default`` values of ``properties`` as it validates."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(key, first, second)
        self.key, self.first, self.second = key, first, second


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (``yaml.safe_load`` keeps the
    last one silently: a second ``think-sft:`` would replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<:`` merges; explicit keys win
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it
                continue
            if first is not None:
                raise _DuplicateKey(key, first, line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """The content of a YAML file, read with :class:`StrictLoader`: a duplicated key is a
    :class:`ConfigError` naming the file, the key and both lines."""
    if not Path(path).is_file():
        raise MissingFileError(f"{path}: no such config file")
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=StrictLoader)  # a SafeLoader subclass
    except _DuplicateKey as dup:
        raise ConfigError(
            f"{path}: key {dup.key!r} given twice, at line {dup.first} and line {dup.second} "
            "(the second would silently replace the first)"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err


def load_schema(path: str | Path = DEFAULT_SCHEMA) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        schema: dict[str, Any] = yaml.safe_load(handle)
    return schema


def validate_config(
    config: dict[str, Any], schema: str | Path | dict[str, Any] = DEFAULT_SCHEMA
) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; raise :class:`ConfigError`."""
    schema_dict = schema if isinstance(schema, dict) else load_schema(schema)
    validator_class = _with_defaults(jsonschema.Draft202012Validator)
    # Defaults are filled while validating, so nested defaults need a second pass to be checked.
    for _ in range(2):
        errors = sorted(
            validator_class(schema_dict).iter_errors(config), key=lambda e: list(e.absolute_path)
        )
        if errors:
            err = errors[0]
            raise ConfigError(f"config key {_key_path(err.absolute_path)}: {err.message}")
    _check_semantics(config)
    return config


def _check_results(config: Mapping[str, Any]) -> None:
    """``results`` stays inside the working directory unless ``allow_results_outside`` says
    otherwise. The check is on the path as written (``..`` and absolute paths), not through
    symlinks: a ``results`` symlink to a scratch disk is the user's explicit choice."""
    results = str(config["results"])
    here = os.path.abspath(os.getcwd())
    where = os.path.abspath(os.path.join(here, results))
    inside = os.path.commonpath([here, where]) == here
    if not inside and not config.get("allow_results_outside", False):
        raise ConfigError(
            f"config key results: {results!r} is outside the working directory {here} "
            "(set allow_results_outside: true to write there)"
        )


def _check_semantics(config: Mapping[str, Any]) -> None:
    from divtrace.tasks import FAMILIES

    _check_results(config)
    try:
        Lineage.from_models(config["models"])
    except LineageError as err:
        raise ConfigError(str(err)) from err
    for name, spec in config["models"].items():
        cot_off = spec.get("cot_off", True)
        if not spec.get("reasoning") and cot_off is False:
            raise ConfigError(
                f"config key models.{name}.cot_off: applies to reasoning models only "
                "(set reasoning: true, or drop cot_off)"
            )
        if spec["format"] == "completion" and spec.get("reasoning") and cot_off:
            raise ConfigError(
                f"config key models.{name}: a reasoning model sampled with CoT off needs format "
                "'chat' (CoT suppression prefills the assistant turn; or set cot_off: false)"
            )
    _check_judge(config)
    for name, spec in config["tasks"].items():
        family = spec.get("family", name)
        if family not in FAMILIES:
            raise ConfigError(
                f"config key tasks.{name}.family: unknown task family {family!r} "
                f"(known: {sorted(FAMILIES)})"
            )
        source = spec["source"]
        if source.endswith(".jsonl"):
            path = Path(source)
            if not path.is_file():
                raise ConfigError(f"config key tasks.{name}.source: no such file {source!r}")
            with path.open("rb") as handle:  # bytes: a non-UTF-8 line is read_jsonl's to name
                if not any(line.strip() for line in handle):
                    raise ConfigError(f"config key tasks.{name}.source: {source!r} has no prompts")


def _check_judge(config: Mapping[str, Any]) -> None:
    """``judge.tasks`` names tasks of the config that have a judge protocol, and at most K
    samples per prompt are judged."""
    judge = config.get("judge", {})
    for task in judge.get("tasks", []):
        if task not in config["tasks"]:
            raise ConfigError(
                f"config key judge.tasks: {task!r} is not a task of the config "
                f"(tasks: {sorted(config['tasks'])})"
            )
        family = config["tasks"][task].get("family", task)
        if family not in JUDGE_TASK_PROTOCOLS:
            raise ConfigError(
                f"config key judge.tasks: task {task!r} (family {family!r}) has no judge "
                f"protocol (judged families: {sorted(JUDGE_TASK_PROTOCOLS)})"
            )
    k = int(config.get("sampling", {}).get("k", 1))
    if int(judge.get("samples_per_prompt", 1)) > k:
        raise ConfigError(
            f"config key judge.samples_per_prompt: {judge['samples_per_prompt']} is more than "
            f"the {k} samples per prompt (sampling.k)"
        )


def merge_configs(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated in place with ``overlay``, mapping by mapping (what Snakemake does with
    several ``--configfile`` files: a later file overrides the keys it names, and only those)."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_configs(base[key], value)
        elif isinstance(value, Mapping):
            base[key] = merge_configs({}, value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(
    path: str | Path | Sequence[str | Path], schema: str | Path = DEFAULT_SCHEMA
) -> dict[str, Any]:
    """Read one YAML config file, or several merged in order (:func:`merge_configs`), and
    validate the result."""
    paths = [path] if isinstance(path, str | Path) else list(path)
    if not paths:
        raise ConfigError("no config file given")
    config: dict[str, Any] = {}
    for one in paths:
        loaded = read_yaml(one)
        if not isinstance(loaded, dict):
            raise ConfigError(f"{one}: the config must be a mapping")
        merge_configs(config, loaded)
    return validate_config(config, schema)


@dataclass(frozen=True)
class Study:
    """The job space a validated config defines: models × tasks × CoT modes × shards."""

    config: Mapping[str, Any]

    @property
    def results(self) -> str:
        return str(self.config["results"])

    @property
    def models(self) -> list[str]:
        return list(self.config["models"])

    @property
    def tasks(self) -> list[str]:
        return list(self.config["tasks"])

    @property
    def lineage(self) -> Lineage:
        return Lineage.from_models(self.config["models"])

    def model(self, name: str) -> Mapping[str, Any]:
        return self.config["models"][name]

    def task(self, name: str) -> Mapping[str, Any]:
        return self.config["tasks"][name]

    def family(self, task: str) -> str:
        return str(self.task(task).get("family", task))

    def is_verifiable(self, task: str) -> bool:
        """The task's family has a correctness check (its samples get scored)."""
        from divtrace.tasks import get_family

        return get_family(self.family(task)).verifiable

    def metric_models(self) -> dict[str, tuple[str, str]]:
        """The models the metrics load, by role: ``{"sbert": (name, revision), "nli": ...}``.

        ``sbert`` when SBERT or Vendi runs (they share the embeddings), ``nli`` when NLI runs.
        """
        metrics = self.config.get("metrics", {})
        names = set(metrics.get("names", ()))
        roles = {
            "sbert": bool(names & EMBEDDING_METRICS),
            "nli": "nli" in names,
            "code": bool(names & set(CODE_EMBEDDING_METRICS)),
        }
        return {
            role: (str(metrics[f"{role}_model"]), str(metrics.get(f"{role}_revision", "main")))
            for role, needed in roles.items()
            if needed
        }

    def cot_modes(self, model: str) -> list[str]:
        """``on`` for every model, plus ``off`` for reasoning models (unless ``cot_off: false``)."""
        spec = self.model(model)
        return ["on", "off"] if spec.get("reasoning") and spec.get("cot_off", True) else ["on"]

    def n_shards(self, task: str) -> int:
        per_shard = int(self.config["sampling"]["prompts_per_shard"])
        return math.ceil(int(self.task(task)["n_prompts"]) / per_shard)

    def shards(self, task: str) -> list[str]:
        return [f"{i:04d}" for i in range(self.n_shards(task))]

    def runs(self) -> list[tuple[str, str, str]]:
        """Every (model, task, cot) combination that gets sampled."""
        return [(m, t, c) for m in self.models for t in self.tasks for c in self.cot_modes(m)]

    # ------------------------------------------------------------------ LLM judges
    @property
    def judge(self) -> Mapping[str, Any]:
        """The ``judge`` block (empty for a config validated before it existed)."""
        return self.config.get("judge", {})

    def judge_protocol(self, task: str) -> str | None:
        """The judge protocol of a task's family, or None for a task that is not judged."""
        return JUDGE_TASK_PROTOCOLS.get(self.family(task))

    def judge_tasks(self) -> list[str]:
        """Tasks judged by this config (none while ``judge.enabled`` is false): ``judge.tasks``,
        or every task whose family has a protocol."""
        if not self.judge.get("enabled", False):
            return []
        chosen = self.judge.get("tasks")
        if chosen is not None:
            return [task for task in self.tasks if task in chosen]
        return [task for task in self.tasks if self.judge_protocol(task) is not None]

    def judge_opponent(self, task: str) -> str | None:
        """The model whose answers a task's judged answers meet (the lineage root for the
        base-opponent protocols, whatever the CoT mode: the base has no CoT-off run), or None
        where the opponent is the dataset's reference or the item's checklist."""
        if self.judge_protocol(task) in JUDGE_BASE_OPPONENT:
            return self.lineage.root
        return None

    def judge_runs(self) -> list[tuple[str, str, str]]:
        """Every (model, task, cot) cell that gets judged: the runs of the judged tasks, less the
        base model's own where its opponent would be itself."""
        tasks = set(self.judge_tasks())
        if not tasks:
            return []
        opponents = {task: self.judge_opponent(task) for task in tasks}
        return [(m, t, c) for m, t, c in self.runs() if t in tasks and m != opponents[t]]
