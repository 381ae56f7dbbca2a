rule fetch_model:
    """Build a toy checkpoint, or download a pinned Hugging Face snapshot (network: local rule)."""
    input:
        parent=parent_manifest,
    output:
        manifest=model_manifest("{model}"),
    log:
        f"{RESULTS}/logs/fetch_model/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_model/{{model}}.tsv"
    localrule: True
    conda:
        "../../envs/sampling.yaml"
    # The root toy build runs alone (everything waits for it): two threads; the others one, side
    # by side. A build's bytes do not depend on its thread count.
    threads: fetch_threads
    params:
        spec=model_spec_json,
        parent_arg=lambda wildcards, input: (
            f"--parent-manifest {input.parent}" if input.parent else ""
        ),
        out_dir=lambda wildcards, output: Path(output.manifest).parent,
    shell:
        "divtrace fetch-model --name {wildcards.model} --spec {params.spec:q} "
        "--out-dir {params.out_dir} {params.parent_arg} --threads {threads} > {log} 2>&1"


rule fetch_metric_model:
    """Make the SBERT or NLI model available offline (hub snapshot or local copy; local rule)."""
    output:
        manifest=metric_model_manifest("{role}"),
    log:
        f"{RESULTS}/logs/fetch_metric_model/{{role}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_metric_model/{{role}}.tsv"
    localrule: True
    conda:
        "../../envs/metrics.yaml"
    params:
        model=lambda wildcards: METRIC_MODELS[wildcards.role][0],
        revision=lambda wildcards: METRIC_MODELS[wildcards.role][1],
        out_dir=lambda wildcards, output: Path(output.manifest).parent,
    shell:
        "divtrace fetch-metric-model --role {wildcards.role} --model {params.model:q} "
        "--revision {params.revision:q} --out-dir {params.out_dir} > {log} 2>&1"
