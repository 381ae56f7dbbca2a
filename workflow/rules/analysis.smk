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
