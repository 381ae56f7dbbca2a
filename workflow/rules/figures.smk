rule figures:
    """Figures drawn from the summary tables only (reruns in seconds)."""
    input:
        TABLES["parquet"],
    output:
        pdf=FIGURES["pdf"],
        png=report(
            FIGURES["png"],
            caption="../report/lineage_trajectories.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        lineage=lineage_json,
        out_dir=lambda wildcards, output: Path(output.pdf).parent,
    shell:
        "divtrace figures --table {input} --lineage {params.lineage:q} "
        "--out-dir {params.out_dir} > {log} 2>&1"
