# GPUs per sampling job: vLLM's tensor-parallel size, 1 for transformers on cuda, 0 on the CPU.
# Partitions, accounts and GPU models are cluster matters: they live in profiles/, not here.
SAMPLE_GPUS = sampling_gpus(config)


rule sample_shard:
    """K samples for every prompt of one shard (the GPU step)."""
    input:
        # ancient while current: a touched or corrupt prompts file replans no shard (common.smk)
        prompts=prompts_input,
        manifest=model_manifest("{model}"),
    output:
        shard_file("{model}", "{task}", "{cot}", "{shard}"),
    log:
        f"{RESULTS}/logs/sample_shard/{{model}}/{{task}}/cot-{{cot}}/shard-{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_shard/{{model}}/{{task}}/cot-{{cot}}/shard-{{shard}}.tsv"
    conda:
        "../../envs/sampling.yaml"
    threads: SAMPLING["threads"]
    resources:
        gpu=SAMPLE_GPUS,
        mem_mb=32000 if SAMPLE_GPUS else 8000,
        # minutes: twice the planned duration of a full shard, then the every-sample-to-budget
        # bound on a retry (divtrace.plan.shard_minutes)
        runtime=lambda wildcards, attempt: shard_minutes(
            config, wildcards.model, wildcards.task, wildcards.cot, attempt
        ),
    params:
        args=sample_args,
        prompts=lambda wildcards: prompts_digest(wildcards.task),
    shell:
        "divtrace sample --prompts {input.prompts} --manifest {input.manifest} "
        "--model {wildcards.model} --task {wildcards.task} --cot {wildcards.cot} "
        "--shard {wildcards.shard} {params.args} --prompts-digest {params.prompts} "
        "--threads {threads} --out {output} "
        "> {log} 2>&1"
