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
    threads: 2
    params:
        family=lambda wildcards: STUDY.family(wildcards.task),
        prompts=lambda wildcards: prompts_digest(wildcards.task),
    shell:
        "divtrace score --task {wildcards.task} --family {params.family} "
        "--prompts {input.prompts} --prompts-digest {params.prompts} "
        "--generations {input.shards} --out {output} > {log} 2>&1"
