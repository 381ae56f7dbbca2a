rule figures:
    """Every figure, drawn from the analysis tables only (reruns in seconds)."""
    input:
        [TABLES[name, "parquet"] for name in TABLE_NAMES],
    output:
        [FIGURES[name, "pdf"] for name in FIGURE_NAMES],
        [
            report(
                FIGURES[name, "png"],
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in FIGURE_NAMES
        ],
    log:
        f"{RESULTS}/logs/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        lineage=lineage_json,
        tables_dir=lambda wildcards, input: Path(input[0]).parent,
        out_dir=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "divtrace figures --tables-dir {params.tables_dir} --lineage {params.lineage:q} "
        "--out-dir {params.out_dir} > {log} 2>&1"
