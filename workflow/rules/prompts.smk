rule prepare_prompts:
    """One task's prompts: a seeded selection with stable ids and gold references."""
    input:
        task_source,
    output:
        prompts_file("{task}"),
    log:
        f"{RESULTS}/logs/prepare_prompts/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_prompts/{{task}}.tsv"
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        args=prompts_args,
        # what the file is made from, a local task file's bytes included (common.smk)
        digest=lambda wildcards: prompts_digest(wildcards.task),
    shell:
        "divtrace prompts --task {wildcards.task} {params.args} --out {output} > {log} 2>&1"
