"""divtrace: where does output diversity collapse in post-training?

snakemake --cores all                                     # the embedded demo
snakemake --cores all --configfile config/olmo3.yaml      # the paper's study
"""

from snakemake.utils import min_version

min_version("9.0")


# The demo config is the default only: a study given with --configfile replaces it instead of
# being deep-merged over it (which would mix the demo's models and tasks into the study).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/diversity.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_targets(),
