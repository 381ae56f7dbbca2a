# One judge job per (model, task, CoT mode) of a judged task (common.smk: JUDGE_RUNS; none while
# judge.enabled is off). Answers are cached by content under JUDGE_CACHE, so a rerun pays nothing.
# judge_api bounds the API jobs in flight (a profile sets its limit: --resources judge_api=N).
JUDGE_VLLM = JUDGE["backend"] == "vllm"


rule judge:
    """LLM-judge verdicts on sample 0 of every prompt of one run (against the reference, the
    base model's answer, or the item's checklist)."""
    input:
        # ancient while current: a touched prompts file rejudges nothing (common.smk)
        prompts=prompts_input,
        generations=shards_of,
        opponent=judge_opponent_shards,
    output:
        judgement_file("{model}", "{task}", "{cot}"),
    log:
        f"{RESULTS}/logs/judge/{{model}}/{{task}}/cot-{{cot}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/judge/{{model}}/{{task}}/cot-{{cot}}.tsv"
    # The Batch API uploads, then waits for OpenAI: a local rule (network, no compute node).
    localrule: JUDGE["backend"] == "openai-batch"
    conda:
        # vLLM for the local judge, and the openai client it depends on for the API backends
        "../../envs/sampling.yaml"
    resources:
        judge_api=0 if JUDGE_VLLM else 1,
        gpu=int(JUDGE["engine"].get("tensor_parallel_size", 1)) if JUDGE_VLLM else 0,
    params:
        args=judge_args,
        cache_dir=JUDGE_CACHE,
        prompts=lambda wildcards: prompts_digest(wildcards.task),
        opponent_arg=lambda wildcards, input: (
            f"--opponent-generations {' '.join(input.opponent)}"
            if input.opponent
            else ""
        ),
    shell:
        "divtrace judge --task {wildcards.task} --prompts {input.prompts} "
        "--generations {input.generations} {params.opponent_arg} --out {output} "
        "{params.args} --cache-dir {params.cache_dir:q} > {log} 2>&1"
