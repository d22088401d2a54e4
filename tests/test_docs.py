"""The schema document is generated from the models; it must never fall behind them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def test_schema_doc_matches_the_models() -> None:
    spec = importlib.util.spec_from_file_location("generate_schema", DOCS / "generate_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "schema.md").read_text() == module.render(), "run `make docs` and commit docs/schema.md"


def test_the_readme_python_examples_run(tmp_path: Path) -> None:
    """The README's Python blocks run as written, in order, on a fresh database file."""
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    code = "\n".join(blocks).replace("Storage()", f"Storage('sqlite:///{tmp_path}/readme.db')", 1)
    exec(compile(code, "README.md", "exec"), {})
