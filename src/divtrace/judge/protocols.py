"""The judge protocols (PAPER.md §6.5): what is compared, the request, the parse, the score.

Pure functions; nothing here sends a request.

``reference_ranking`` (tldr, cnn_dailymail, xsum, alpaca): the model's answer against the
dataset's reference. The judge ranks two answers, ``model_1`` shown first, in a Python-style
list ``[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]``. Unswapped, the
model's answer is ``model_1``; the pair is swapped (the reference first) when the last hex
digit of SHA-256(``source\\n||\\nanswer\\n||\\nreference``) is odd (:func:`ranking_swapped`).
The swap is undone before scoring: win 1, tie (both rank 1, or equal ranks) 0.5, loss 0.

``base_pairwise`` (writingprompts, prism): the model's answer against the base model's answer
to the same prompt, in both orders: ``swapped`` False has the model as assistant A, True the
base model as A. The five labels ``[[A>>B]]`` … ``[[B>>A]]`` score 1, .75, .5, .25, 0 for A;
the swapped order is flipped (1 − s), so every score is from the model's side. A sample's score
is the mean of its two orders (:func:`combine_orders`, with their position consistency).

``wb_score`` (wildbench): the judge rates the answer 1–10 against the item's checklist, in JSON
with a ``score`` field; the WB-Score of a set is ``(mean − 5) × 2`` (:func:`wb_score`).

An answer that cannot be parsed has ``parsed`` False and a missing score: it is counted, never
taken as a tie or a loss.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from divtrace.errors import ContractError, UsageError
from divtrace.judge.templates import JudgeTemplate
from divtrace.names import JUDGE_REFERENCE, JUDGE_TASK_PROTOCOLS

#: ``doc_type`` of the ranking template per task family (what the request holds).
DOC_TYPES: dict[str, str] = {
    "tldr": "forum post",
    "cnn_dailymail": "news article",
    "xsum": "news article",
    "alpaca": "instruction",
}
#: The pairwise verdict labels and the score each gives assistant A.
PAIRWISE_SCORES: dict[str, float] = {
    "A>>B": 1.0,
    "A>B": 0.75,
    "A=B": 0.5,
    "B>A": 0.25,
    "B>>A": 0.0,
}
RANKING_SCORES: dict[str, float] = {"win": 1.0, "tie": 0.5, "loss": 0.0}
WB_SCORE_RANGE = (1.0, 10.0)

_LABEL = re.compile(r"\[\[(A>>B|A>B|A=B|B>A|B>>A)\]\]")
_LIST = re.compile(r"\[\s*\{.*?\}\s*,\s*\{.*?\}\s*\]", re.DOTALL)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def protocol_of(family: str) -> str:
    """The protocol that judges a task family."""
    try:
        return JUDGE_TASK_PROTOCOLS[family]
    except KeyError:
        raise UsageError(
            f"task family {family!r} has no judge protocol (judged: {sorted(JUDGE_TASK_PROTOCOLS)})"
        ) from None


@dataclass(frozen=True)
class Parsed:
    """A parsed judge answer: ``verdict`` as the row stores it and ``score`` from the model's
    side; both None when the answer could not be parsed."""

    verdict: str | None
    score: float | None

    @property
    def ok(self) -> bool:
        return self.score is not None


UNPARSED = Parsed(None, None)


# --------------------------------------------------------------------------- reference ranking
def ranking_swapped(source: str, answer: str, reference: str) -> bool:
    """Whether the reference is shown first: the last hex digit of the SHA-256 of
    ``source\\n||\\nanswer\\n||\\nreference`` is odd."""
    digest = hashlib.sha256(f"{source}\n||\n{answer}\n||\n{reference}".encode()).hexdigest()
    return int(digest[-1], 16) % 2 == 1


def parse_ranking(text: str, swapped: bool) -> Parsed:
    """Parse a ranking answer and score it from the model's side (the swap undone)."""
    for match in _LIST.finditer(text or ""):
        try:
            value = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        ranks = _ranks(value)
        if ranks is None:
            continue
        model_rank = ranks["model_2" if swapped else "model_1"]
        other_rank = ranks["model_1" if swapped else "model_2"]
        verdict = "win" if model_rank < other_rank else "loss" if model_rank > other_rank else "tie"
        return Parsed(verdict, RANKING_SCORES[verdict])
    return UNPARSED


def _ranks(value: Any) -> dict[str, int] | None:
    if not isinstance(value, list) or len(value) != 2:
        return None
    ranks: dict[str, int] = {}
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"model", "rank"}:
            return None
        model, rank = entry["model"], entry["rank"]
        if model not in ("model_1", "model_2") or model in ranks:
            return None
        if isinstance(rank, bool) or not isinstance(rank, int) or rank not in (1, 2):
            return None
        ranks[model] = rank
    return ranks


# --------------------------------------------------------------------------- base pairwise
def parse_pairwise(text: str, swapped: bool) -> Parsed:
    """Parse a verdict label; the score is A's, flipped when the base model was A. An answer
    with no label, or with two different labels, is unparsed."""
    labels = set(_LABEL.findall(text or ""))
    if len(labels) != 1:
        return UNPARSED
    label = labels.pop()
    score = PAIRWISE_SCORES[label]
    return Parsed(f"[[{label}]]", 1.0 - score if swapped else score)


def combine_orders(frame: pl.DataFrame) -> pl.DataFrame:
    """Per judged sample of the pairwise protocol: the mean score of its two orders, and whether
    they agree (``consistent``: both orders prefer the same side, or both call it even).

    ``frame`` holds judgement rows (:data:`divtrace.names.JUDGEMENT_COLUMNS`); a sample whose two
    orders are not both parsed gets a missing ``score`` and ``consistent``.
    """
    keys = ["model", "task", "cot", "prompt_id", "sample", "opponent"]
    side = (
        pl.when(pl.col("score") > 0.5)
        .then(pl.lit(1))
        .when(pl.col("score") < 0.5)
        .then(pl.lit(-1))
        .otherwise(pl.lit(0))
    )
    pairs = frame.filter(pl.col("protocol") == "base_pairwise").with_columns(side.alias("_side"))
    return (
        pairs.group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("n_orders"),
            pl.col("score").is_not_null().sum().alias("n_parsed"),
            pl.col("score").mean().alias("_mean"),
            pl.col("_side").filter(pl.col("score").is_not_null()).n_unique().alias("_sides"),
        )
        .with_columns(
            complete=(pl.col("n_orders") == 2) & (pl.col("n_parsed") == 2),
        )
        .select(
            *keys,
            pl.when(pl.col("complete")).then(pl.col("_mean")).alias("score"),
            pl.when(pl.col("complete")).then(pl.col("_sides") == 1).alias("consistent"),
        )
    )


# --------------------------------------------------------------------------- wb score
def parse_wb_score(text: str) -> Parsed:
    """Parse the ``score`` field (1–10) of a JSON answer (fenced or bare); out of range or
    absent is unparsed."""
    body = text or ""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", body, re.DOTALL)
    candidates = [fenced.group(1)] if fenced else []
    match = _OBJECT.search(body)
    if match:
        candidates.append(match.group(0))
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(value, dict) or "score" not in value:
            continue
        score = _number(value["score"])
        if score is None or not WB_SCORE_RANGE[0] <= score <= WB_SCORE_RANGE[1]:
            return UNPARSED
        return Parsed(f"{score:g}", score)
    return UNPARSED


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def wb_score(raw_scores: Sequence[float]) -> float:
    """WB-Score of a set of raw 1–10 scores: ``(mean − 5) × 2`` (NaN for an empty set)."""
    if not raw_scores:
        return math.nan
    return (sum(raw_scores) / len(raw_scores) - 5.0) * 2.0


def parse(protocol: str, text: str, swapped: bool) -> Parsed:
    """Parse a judge answer of ``protocol``."""
    if protocol == "reference_ranking":
        return parse_ranking(text, swapped)
    if protocol == "base_pairwise":
        return parse_pairwise(text, swapped)
    if protocol == "wb_score":
        return parse_wb_score(text)
    raise UsageError(f"unknown judge protocol {protocol!r}")


# --------------------------------------------------------------------------- items
@dataclass(frozen=True)
class Item:
    """One judge request for one judged sample (and order)."""

    model: str
    task: str
    cot: str
    prompt_id: str
    sample: int
    protocol: str
    opponent: str
    swapped: bool
    messages: tuple[Mapping[str, str], ...]
    max_tokens: int


def request_source(prompt: Mapping[str, Any]) -> str:
    """The request the model answered, as the judge sees it: the last user turn of the
    prompt's chat messages, else its completion text."""
    messages = prompt.get("messages")
    if messages:
        turns = json.loads(messages)
        users = [t["content"] for t in turns if t.get("role") == "user"]
        if users:
            return str(users[-1])
    return str(prompt.get("text") or "")


def _reference(prompt: Mapping[str, Any]) -> dict[str, Any]:
    value = json.loads(prompt.get("reference") or "{}")
    return value if isinstance(value, dict) else {}


def _checklist(reference: Mapping[str, Any]) -> str:
    items = reference.get("checklist") or []
    if not items:
        return "(no checklist is given for this request; grade it on its own merits)"
    return "\n".join(f"- {item}" for item in items)


def build_items(
    family: str,
    template: JudgeTemplate,
    prompts: pl.DataFrame,
    generations: pl.DataFrame,
    opponent_generations: pl.DataFrame | None = None,
    samples_per_prompt: int = 1,
) -> list[Item]:
    """The judge requests of one (model, task, CoT) run: samples ``0 .. samples_per_prompt-1``
    of each prompt (CoT stripped: the ``answer`` column), in prompt and sample order.

    The base-pairwise protocol needs ``opponent_generations`` (the base model's; its sample 0
    of each prompt); a prompt it lacks is refused, naming the prompt.
    """
    protocol = protocol_of(family)
    if template.protocol != protocol:
        raise UsageError(f"template {template.origin} is for {template.protocol}, not {protocol}")
    if samples_per_prompt < 1:
        raise UsageError(f"samples per prompt must be at least 1, got {samples_per_prompt}")
    by_id = {row["prompt_id"]: row for row in prompts.iter_rows(named=True)}
    chosen = generations.filter(pl.col("sample") < samples_per_prompt).sort(["prompt_id", "sample"])
    opponent_answers: dict[str, str] = {}
    opponent_name = JUDGE_REFERENCE
    if protocol == "base_pairwise":
        if opponent_generations is None:
            raise UsageError(f"the {protocol} protocol ({family}) needs --opponent-generations")
        models = opponent_generations.get_column("model").unique().to_list()
        if len(models) != 1:
            raise ContractError(f"opponent generations hold {len(models)} models: {models}")
        opponent_name = str(models[0])
        for row in opponent_generations.filter(pl.col("sample") == 0).iter_rows(named=True):
            opponent_answers[row["prompt_id"]] = row["answer"] or ""
    order = {pid: i for i, pid in enumerate(prompts.get_column("prompt_id").to_list())}
    rows = sorted(
        chosen.iter_rows(named=True), key=lambda r: (order.get(r["prompt_id"], -1), r["sample"])
    )
    items: list[Item] = []
    for row in rows:
        prompt = by_id.get(row["prompt_id"])
        if prompt is None:
            raise ContractError(f"generation of prompt {row['prompt_id']!r} is not in the prompts")
        source = request_source(prompt)
        answer = row["answer"] or ""
        common = {
            "model": row["model"],
            "task": row["task"],
            "cot": row["cot"],
            "prompt_id": row["prompt_id"],
            "sample": int(row["sample"]),
            "protocol": protocol,
            "max_tokens": template.max_tokens,
        }
        if protocol == "reference_ranking":
            reference = _reference(prompt).get("reference")
            if not isinstance(reference, str):
                raise ContractError(f"prompt {row['prompt_id']!r} has no reference text to judge")
            swapped = ranking_swapped(source, answer, reference)
            first, second = (reference, answer) if swapped else (answer, reference)
            messages = template.messages(
                source=source,
                answer_1=first,
                answer_2=second,
                doc_type=DOC_TYPES.get(family, "request"),
            )
            items.append(
                Item(**common, opponent=opponent_name, swapped=swapped, messages=tuple(messages))
            )
        elif protocol == "base_pairwise":
            if row["prompt_id"] not in opponent_answers:
                raise ContractError(
                    f"opponent {opponent_name} has no sample 0 for prompt {row['prompt_id']!r}"
                )
            base = opponent_answers[row["prompt_id"]]
            for swapped in (False, True):
                a, b = (base, answer) if swapped else (answer, base)
                messages = template.messages(source=source, answer_a=a, answer_b=b)
                items.append(
                    Item(
                        **common, opponent=opponent_name, swapped=swapped, messages=tuple(messages)
                    )
                )
        else:
            messages = template.messages(
                source=source, answer=answer, checklist=_checklist(_reference(prompt))
            )
            items.append(
                Item(**common, opponent=opponent_name, swapped=False, messages=tuple(messages))
            )
    return items
