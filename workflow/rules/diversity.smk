# metrics.one_job_per_model: one job measures every task of a model and CoT mode (the metric
# models load once); otherwise one job per run. Each run's file is the same either way.
if METRICS["one_job_per_model"]:

    rule diversity:
        """The diversity metrics of every task of one model and CoT mode, per input and across
        inputs, one file per task.
        """
        input:
            shards=shards_of_model,
            quality=quality_of_model,
            prompts=behaviour_prompts_of_model,
            models=metric_model_manifests(),
        output:
            [diversity_file("{model}", task, "{cot}") for task in STUDY.tasks],
        log:
            f"{RESULTS}/logs/diversity/{{model}}/cot-{{cot}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/diversity/{{model}}/cot-{{cot}}.tsv"
        conda:
            "../../envs/metrics.yaml"
        # the behaviours of code tasks run programs in the sandbox, this many at once
        threads: 2 if any(runs_behaviours(task) for task in STUDY.tasks) else 1
        resources:
            # a GPU only when an embedding/NLI model runs with metrics.device cuda
            gpu=metrics_gpus(config),
        params:
            cells=diversity_cells,
            args=diversity_args(),
        shell:
            "divtrace diversity {params.cells} {params.args} --workers {threads} "
            "--model-manifests {input.models} > {log} 2>&1"

else:

    rule diversity:
        """The diversity metrics of one model, task and CoT mode, per input and across inputs."""
        input:
            shards=shards_of,
            quality=quality_of,
            prompts=behaviour_prompts,
            models=metric_model_manifests(),
        output:
            diversity_file("{model}", "{task}", "{cot}"),
        log:
            f"{RESULTS}/logs/diversity/{{model}}/{{task}}/cot-{{cot}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/diversity/{{model}}/{{task}}/cot-{{cot}}.tsv"
        conda:
            "../../envs/metrics.yaml"
        # the behaviours of code tasks run programs in the sandbox, this many at once
        threads: lambda wildcards: 2 if runs_behaviours(wildcards.task) else 1
        resources:
            # a GPU only when an embedding/NLI model runs with metrics.device cuda
            gpu=metrics_gpus(config),
        params:
            args=diversity_args(),
            family=lambda wildcards: STUDY.family(wildcards.task),
            behaviours=behaviour_args,
        shell:
            "divtrace diversity --generations {input.shards} --quality {input.quality} "
            "--out {output} --family {params.family} {params.args} {params.behaviours} "
            "--workers {threads} --model-manifests {input.models} > {log} 2>&1"
