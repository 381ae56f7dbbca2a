"""The project's tabular work is polars: no code of the library or the workflow imports pandas,
and pandas is no dependency (it may still be installed, e.g. by ``datasets``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import REPO

# ``import pandas``, ``import pandas as pd``, ``import numpy, pandas``, ``from pandas import x``,
# ``from pandas.api import y``, at any indentation (imports inside functions count too).
PANDAS_IMPORT = re.compile(
    r"^[ \t]*(?:import[ \t]+(?:[\w.]+(?:[ \t]+as[ \t]+\w+)?[ \t]*,[ \t]*)*pandas\b"
    r"|from[ \t]+pandas\b)",
    re.MULTILINE,
)


def code_files() -> list[Path]:
    files = [REPO / "Snakefile"]
    files += sorted((REPO / "src").rglob("*.py"))
    for pattern in ("*.py", "*.smk", "Snakefile"):
        files += sorted((REPO / "workflow").rglob(pattern))
    return files


def test_the_pattern_finds_every_form_of_import():
    for line in (
        "import pandas",
        "import pandas as pd",
        "    import pandas as pd",
        "import numpy as np, pandas",
        "from pandas import DataFrame",
        "from pandas.api.types import is_bool_dtype",
    ):
        assert PANDAS_IMPORT.search(line), line
    for line in ("import polars as pl", "# pandas is not used", "import pandas_stubs_like"):
        assert not PANDAS_IMPORT.search(line), line


def test_no_library_or_workflow_file_imports_pandas():
    files = code_files()
    assert REPO / "src" / "divtrace" / "io.py" in files
    assert REPO / "workflow" / "rules" / "common.smk" in files
    offenders = [
        f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path in files
        for text in [path.read_text(encoding="utf-8")]
        for match in PANDAS_IMPORT.finditer(text)
    ]
    assert not offenders, f"pandas imported in {offenders}"


def test_pandas_is_no_dependency():
    with open(REPO / "pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    names = {canonicalize_name(Requirement(line).name) for line in requirements}
    assert not {n for n in names if n.startswith("pandas")}, names
    assert "polars" in names
