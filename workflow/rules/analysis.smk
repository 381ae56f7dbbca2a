rule summarize_quality:
    """accuracy@1, majority@K and pass@k per model, task and CoT mode."""
    input:
        all_quality_files,
    output:
        parquet=QUALITY_TABLES["parquet"],
        csv=QUALITY_TABLES["csv"],
    log:
        f"{RESULTS}/logs/summarize_quality.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize_quality.tsv"
    conda:
        "../../envs/analysis.yaml"
    shell:
        "divtrace summarize-quality --quality {input} "
        "--out-parquet {output.parquet} --out-csv {output.csv} > {log} 2>&1"


rule summarize:
    """Per-model means with lineage labels and ratios to the base model and the parent stage."""
    input:
        all_diversity_files,
    output:
        parquet=TABLES["parquet"],
        csv=TABLES["csv"],
    log:
        f"{RESULTS}/logs/summarize.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        lineage=lineage_json,
    shell:
        "divtrace summarize --diversity {input} --lineage {params.lineage:q} "
        "--out-parquet {output.parquet} --out-csv {output.csv} > {log} 2>&1"
