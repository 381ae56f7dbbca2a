rule score_quality:
    """Correctness of every sample of a verifiable task (code runs in a sandbox)."""
    input:
        prompts=prompts_input,
        shards=shards_of,
    output:
        quality_file("{model}", "{task}", "{cot}"),
    log:
        f"{RESULTS}/logs/score_quality/{{model}}/{{task}}/cot-{{cot}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_quality/{{model}}/{{task}}/cot-{{cot}}.tsv"
    conda:
        "../../envs/analysis.yaml"
    # two cores for programs run in the sandbox, one for a check on the text
    threads: lambda wildcards: score_threads(STUDY, wildcards.task)
    params:
        family=lambda wildcards: STUDY.family(wildcards.task),
        prompts=lambda wildcards: prompts_digest(wildcards.task),
    shell:
        "divtrace score --task {wildcards.task} --family {params.family} "
        "--prompts {input.prompts} --prompts-digest {params.prompts} "
        "--generations {input.shards} --out {output} > {log} 2>&1"
