"""Files shipped inside the package, found through `importlib.resources`.

The repository keeps them in `data/` (code tables in `reference/`, the Data Docs assets in
`vendor/datadocs/`) and beside the code (`transforms/sql/`, `transforms/documents/templates/`); the wheel
installs them under the import name `jointdraw` (`jointdraw/data/…`, `jointdraw/transforms/…`),
so a worker or an auditor that installed the package finds them without the checkout.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import jinja2


def packaged_dir(package: str, *parts: str) -> Path:
    """A folder shipped in `package` (e.g. `jointdraw.data`, "reference"), as a path on disk.

    Wheels install unzipped, so the folder is a real directory; anything else is an install
    this project does not support, said as such."""
    folder = resources.files(package).joinpath(*parts)
    path = Path(str(folder))
    if not path.is_dir():
        raise FileNotFoundError(
            f"{package}/{'/'.join(parts)} is not a folder on disk ({folder!r}): "
            "install jointdraw from its wheel or the checkout, not from a zip"
        )
    return path


def reference_dir() -> Path:
    """data/reference/: the code tables."""
    return packaged_dir("jointdraw.data", "reference")


def datadocs_vendor_dir() -> Path:
    """data/vendor/datadocs/: Bootstrap, jQuery, Font Awesome, Vega … for offline Data Docs."""
    return packaged_dir("jointdraw.data", "vendor", "datadocs")


def templates_dir() -> Path:
    """transforms/documents/templates/: the Jinja templates of the pages people open."""
    return packaged_dir("jointdraw.transforms.documents", "templates")


def sql_dir() -> Path:
    """transforms/sql/: the DuckDB SQL of the merge and the draw."""
    return packaged_dir("jointdraw.transforms", "sql")


def sql_text(name: str) -> str:
    """transforms/sql/<name>.sql, the text DuckDB runs."""
    return (sql_dir() / f"{name}.sql").read_text(encoding="utf-8")


@cache
def _page_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()), autoescape=True, undefined=jinja2.StrictUndefined
    )


def page_template(name: str) -> jinja2.Template:
    """A page template of transforms/documents/templates/ (autoescaped; an unknown variable is an error)."""
    return _page_environment().get_template(name)
