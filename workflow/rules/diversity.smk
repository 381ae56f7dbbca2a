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
        metrics=",".join(METRICS["names"]),
        sbert_model=METRICS["sbert_model"],
        ead_vocab_size=METRICS["ead_vocab_size"],
        ead_tokenize=METRICS["ead_tokenize"],
        nli_model=METRICS["nli_model"],
        nli_max_length=METRICS["nli_max_length"],
        code_model=METRICS["code_model"],
        code_max_length=METRICS["code_max_length"],
        device=METRICS["device"],
        family=lambda wildcards: STUDY.family(wildcards.task),
        k_grid=",".join(str(k) for k in METRICS["k_grid"]),
        behaviours=behaviour_args,
    shell:
        "divtrace diversity --generations {input.shards} --quality {input.quality} "
        "--out {output} "
        "--metrics {params.metrics} --sbert-model {params.sbert_model:q} "
        "--ead-vocab-size {params.ead_vocab_size} --ead-tokenize {params.ead_tokenize} "
        "--nli-model {params.nli_model:q} --nli-max-length {params.nli_max_length} "
        "--code-model {params.code_model:q} --code-max-length {params.code_max_length} "
        "--device {params.device} --family {params.family} --k-grid '{params.k_grid}' "
        "--model-manifests {input.models} {params.behaviours} --workers {threads} "
        "> {log} 2>&1"
