rule summarize:
    """Every analysis table: diversity with intervals, retention, stages, CoT, decomposition, quality."""
    input:
        diversity=all_diversity_files,
        quality=all_quality_files,
        generations=all_shards(),
        judgements=all_judgement_files,
    output:
        [TABLES[name, "parquet"] for name in TABLE_NAMES],
        [
            (
                report(
                    TABLES[name, "csv"],
                    caption=f"../report/{name}_table.rst",
                    category="Tables",
                )
                if name in REPORT_TABLES
                else TABLES[name, "csv"]
            )
            for name in TABLE_NAMES
        ],
    log:
        f"{RESULTS}/logs/summarize.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        lineage=lineage_json,
        runs=runs_json,
        out_dir=lambda wildcards, output: Path(output[0]).parent,
        n_boot=config["analysis"]["n_boot"],
        seed=config["analysis"]["seed"],
        equivalence_margin=config["analysis"]["equivalence_margin"],
        judge=judge_summary_args,
    shell:
        "divtrace summarize --diversity {input.diversity} --quality {input.quality} "
        "--generations {input.generations} "
        "--lineage {params.lineage:q} --runs {params.runs:q} --n-boot {params.n_boot} --seed {params.seed} "
        "--equivalence-margin {params.equivalence_margin} "
        "--judgements {input.judgements} {params.judge} "
        "--out-dir {params.out_dir} > {log} 2>&1"
