"""Every name and path spelled once: tables, figures, metrics, orderings, labels, file layout.

The Snakefile (at parse time), the library and the tests import these; this module imports
nothing, so reading it costs nothing.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- tables and figures
#: The analysis tables under ``results/tables/`` (``{name}.parquet`` and ``{name}.csv``), in order.
TABLE_NAMES: tuple[str, ...] = (
    "diversity",
    "retention",
    "stages",
    "cot",
    "decomposition",
    "diversity_k",
    "quality",
    "truncation",
    "missing",
)
#: Tables the HTML report (``snakemake --report``) shows beside the figures.
REPORT_TABLES: tuple[str, ...] = ("truncation", "missing")

#: Figure name → the table it is drawn from; ``results/figures/{name}.pdf`` and ``.png``.
FIGURE_TABLES: dict[str, str] = {
    "lineage_trajectories": "diversity",
    "retention_heatmap": "retention",
    "stage_attribution": "stages",
    "cot_on_off": "cot",
    "decomposition": "decomposition",
    "quality_by_stage": "quality",
    "quality_filtered_vendi": "diversity",
    "diversity_by_k": "diversity_k",
    "distinct_answers_by_stage": "diversity",
}
FIGURE_NAMES: tuple[str, ...] = tuple(FIGURE_TABLES)

# --------------------------------------------------------------------------- metrics and orderings
#: Structural code-diversity metrics (PAPER.md §8.1; :mod:`divtrace.metrics.code`): computed
#: only for the tasks of :data:`CODE_FAMILIES`, absent (no rows) for every other task.
CODE_METRICS: tuple[str, ...] = (
    "ast_distinct",
    "ast_pairwise",
    "ast_struct_pairwise",
    "ast_parseable",
)
#: Task families whose answers are programs the code metrics parse (the paper's script skips
#: CRUXEval, whose answers are values).
CODE_FAMILIES: tuple[str, ...] = ("humaneval", "mbpp")
#: Embedding diversity of the extracted code with a code encoder (``metrics.code_model``; the
#: paper's UniXcoder analysis, PAPER.md §8.1): SBERT's and Vendi's formulas on the code.
CODE_EMBEDDING_METRICS: tuple[str, ...] = ("code_sbert", "code_vendi")
#: Task families whose answers the code encoder embeds (the paper's script includes CRUXEval).
CODE_EMBEDDING_FAMILIES: tuple[str, ...] = ("humaneval", "mbpp", "cruxeval")
#: Answer-class metrics (:mod:`divtrace.metrics.classes`), per input only: the number of
#: distinct final answers among a prompt's outputs, among its correct outputs, and the share of
#: the largest class.
CLASS_METRICS: tuple[str, ...] = ("distinct_answers", "distinct_correct", "mode_share")
#: Task families whose outputs have answer classes: by the checker's equivalence (math), by value
#: (CRUXEval), by the judge's verdict vector (IFEval), by behaviour (code:
#: :mod:`divtrace.quality.behaviour`, which needs the prompts with the tests).
CLASS_FAMILIES: tuple[str, ...] = (
    "gsm8k",
    "math_algebra",
    "math_geometry",
    "cruxeval",
    "ifeval",
    "humaneval",
    "mbpp",
)
#: Behavioural diversity of code, per input only: the number of distinct behaviours (output
#: signatures on the tests' inputs and inputs derived from them) among a prompt's programs.
BEHAVIOUR_METRICS: tuple[str, ...] = ("behaviours",)
#: Task families whose programs have behaviours (the code families).
BEHAVIOUR_FAMILIES: tuple[str, ...] = CODE_FAMILIES
#: Vendi of order q other than 1 (the Rényi generalisation; q = 1 is ``vendi``, the headline).
VENDI_ORDERS: dict[str, float] = {"vendi_q0.5": 0.5, "vendi_q2": 2.0, "vendi_qinf": float("inf")}
#: Diversity metrics, in the order tables and figures show them (the paper's four first:
#: PAPER.md §5).
METRICS: tuple[str, ...] = (
    "ead",
    "sbert",
    "nli",
    "vendi",
    *VENDI_ORDERS,
    *CODE_METRICS,
    *CODE_EMBEDDING_METRICS,
    *CLASS_METRICS,
    *BEHAVIOUR_METRICS,
)
#: Metrics computed from the SBERT embeddings.
EMBEDDING_METRICS: frozenset[str] = frozenset({"sbert", "vendi", *VENDI_ORDERS})
#: Metrics that run a neural model (Vendi uses the SBERT embeddings).
MODEL_METRICS: frozenset[str] = frozenset({*EMBEDDING_METRICS, *CODE_EMBEDDING_METRICS, "nli"})


def metric_applies(metric: str, family: str, scope: str = "per_input") -> bool:
    """Whether ``metric`` is computed for a task of ``family`` in ``scope``: the code metrics
    only for the code families, the answer-class metrics only per input and for the families
    with answer classes, the behaviours only per input and for the code families, every other
    metric everywhere."""
    if metric in CODE_METRICS:
        return family in CODE_FAMILIES
    if metric in CODE_EMBEDDING_METRICS:
        return family in CODE_EMBEDDING_FAMILIES
    if metric in CLASS_METRICS:
        return family in CLASS_FAMILIES and scope == "per_input"
    if metric in BEHAVIOUR_METRICS:
        return family in BEHAVIOUR_FAMILIES and scope == "per_input"
    return True


COT_MODES: tuple[str, ...] = ("on", "off")
SCOPES: tuple[str, ...] = ("per_input", "across_input")
SUBSETS: tuple[str, ...] = ("all", "correct")
#: The fewest outputs a set needs to have a diversity (per input and across inputs, any metric):
#: one output has no spread to measure, so a smaller set gets a missing value, not 0.
MIN_OUTPUTS = 2
#: The six verifiable tasks of the paper's quality-filtered diversity and decomposition
#: (PAPER.md §7); other verifiable tasks (TruthfulQA, CRUXEval) are divtrace's extras.
PAPER_DECOMPOSITION_TASKS: tuple[str, ...] = (
    "gsm8k",
    "math_algebra",
    "math_geometry",
    "humaneval",
    "mbpp",
    "ifeval",
)
#: What a checkpoint is compared with: the root checkpoint, or its parent stage.
REFERENCES: tuple[str, ...] = ("base", "parent")
#: Conventional stage labels, in lineage order (others sort after them).
STAGE_ORDER: tuple[str, ...] = ("base", "sft", "dpo", "rl", "rlzero")

# --------------------------------------------------------------------------- labels
#: ``task`` value of the rows that average over tasks (sorted after the tasks).
ALL_TASKS = "all tasks (mean)"
#: ``lineage`` label of the root checkpoint, which belongs to every lineage.
BASE_LABEL = "base"
#: The leading columns of the per-checkpoint tables: the checkpoint and its place in the lineage.
LINEAGE_COLUMNS: tuple[str, ...] = ("model", "lineage", "stage", "parent", "depth")

# --------------------------------------------------------------------------- LLM judges
#: The columns of a judgements file (``divtrace judge``), one row per judged sample, in order.
#: ``opponent`` is :data:`JUDGE_REFERENCE` or the opponent model; ``verdict`` is ``win``/``tie``/
#: ``loss`` (ranking), the verdict label (pairwise) or the score as text (WB-Score); ``score`` is
#: missing when the judge's answer could not be parsed.
JUDGEMENT_COLUMNS: tuple[str, ...] = (
    "model",
    "task",
    "cot",
    "prompt_id",
    "sample",
    "protocol",
    "opponent",
    "swapped",
    "raw",
    "parsed",
    "verdict",
    "score",
    "prompt_tokens",
    "completion_tokens",
    "judge_model",
    "template_version",
)
#: The judge protocols (PAPER.md §6.5): ranking against the dataset's reference, pairwise
#: against the base model's sample in both orders, and WildBench's checklist score.
JUDGE_PROTOCOLS: tuple[str, ...] = ("reference_ranking", "base_pairwise", "wb_score")
#: Task family → its judge protocol (the seven open-ended tasks).
JUDGE_TASK_PROTOCOLS: dict[str, str] = {
    "tldr": "reference_ranking",
    "cnn_dailymail": "reference_ranking",
    "xsum": "reference_ranking",
    "alpaca": "reference_ranking",
    "writingprompts": "base_pairwise",
    "prism": "base_pairwise",
    "wildbench": "wb_score",
}
#: ``opponent`` of a judgement against the dataset's reference answer.
JUDGE_REFERENCE = "reference"
#: ``verdict`` values of the ranking protocol, from the model's side.
JUDGE_VERDICTS: tuple[str, ...] = ("win", "tie", "loss")
#: The judge's backends: a chat-completions endpoint, the OpenAI Batch API, offline vLLM.
JUDGE_BACKENDS: tuple[str, ...] = ("openai", "openai-batch", "vllm")

# --------------------------------------------------------------------------- file layout
#: The config schema, relative to the repository root.
CONFIG_SCHEMA = "workflow/schemas/config.schema.yaml"
MODEL_MANIFEST = "resources/models/{model}/manifest.json"
METRIC_MODEL_MANIFEST = "resources/metric_models/{role}/manifest.json"
PROMPTS_FILE = "{results}/prompts/{task}.parquet"
SHARD_FILE = "{results}/generations/{model}/{task}/cot-{cot}/shard-{shard}.parquet"
QUALITY_FILE = "{results}/quality/{model}/{task}/cot-{cot}.parquet"
DIVERSITY_FILE = "{results}/diversity/{model}/{task}/cot-{cot}.parquet"
TABLE_FILE = "{results}/tables/{name}.{ext}"
FIGURE_FILE = "{results}/figures/{name}.{ext}"

# --------------------------------------------------------------------------- LLM judges: workflow
# The judge stage as the workflow, the tables and the figures see it (issue #16; the judging
# library's names, JUDGE_PROTOCOLS and JUDGE_TASK_PROTOCOLS, are above).
#: Protocols whose opponent is the base model's answer (the lineage root; judged in both orders).
JUDGE_BASE_OPPONENT: frozenset[str] = frozenset({"base_pairwise"})
#: The judge table's headline number per protocol: a win rate in [0, 1], or the WB-Score,
#: ``(mean - 5) x 2`` in [-8, 10].
JUDGE_MEASURES: dict[str, str] = {
    "reference_ranking": "win_rate",
    "base_pairwise": "win_rate",
    "wb_score": "wb_score",
}
#: The judge table (``results/tables/judge.*``; only written when the judge is enabled).
JUDGE_TABLE = "judge"
#: Figures that read the judge table besides their own (figure → extra tables).
FIGURE_EXTRA_TABLES: dict[str, tuple[str, ...]] = {"quality_by_stage": (JUDGE_TABLE,)}
#: One file of judgements per (model, task, CoT mode).
JUDGEMENT_FILE = "{results}/judgements/{model}/{task}/cot-{cot}.parquet"
# The judge table joins the analysis tables (written empty when the judge is off) and the report.
TABLE_NAMES = (*TABLE_NAMES, JUDGE_TABLE)
REPORT_TABLES = (*REPORT_TABLES, JUDGE_TABLE)
