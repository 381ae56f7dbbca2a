# GPUs per sampling job: vLLM's tensor-parallel size, 1 for transformers on cuda, 0 on the CPU.
# Partitions, accounts and GPU models are cluster matters: they live in profiles/, not here.
SAMPLE_GPUS = sampling_gpus(config)


# sampling.one_job_per_model: one job samples every shard of every task of a model and CoT mode
# (torch imported and the model loaded once); otherwise one job per shard, each rerun alone. The
# shard files are the same paths either way, and hold the same tables.
if SAMPLING["one_job_per_model"]:

    rule sample_model:
        """K samples for every prompt of every shard of one model and CoT mode, all tasks."""
        input:
            # ancient while current: a touched or corrupt prompts file replans no shard
            prompts=sample_model_prompts,
            manifest=model_manifest("{model}"),
        output:
            [
                shard_file("{model}", task, "{cot}", shard)
                for task in STUDY.tasks
                for shard in STUDY.shards(task)
            ],
        log:
            f"{RESULTS}/logs/sample_model/{{model}}/cot-{{cot}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/sample_model/{{model}}/cot-{{cot}}.tsv"
        conda:
            "../../envs/sampling.yaml"
        threads: SAMPLING["threads"]
        resources:
            gpu=SAMPLE_GPUS,
            mem_mb=32000 if SAMPLE_GPUS else 8000,
            # minutes: the sum of its shards' (divtrace.plan.shard_minutes), growing on a retry
            runtime=sample_model_minutes,
        params:
            shards=sample_model_groups,
            args=sample_model_args,
        shell:
            "divtrace sample {params.shards} --manifest {input.manifest} "
            "--model {wildcards.model} --cot {wildcards.cot} {params.args} "
            "--threads {threads} > {log} 2>&1"

else:

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
