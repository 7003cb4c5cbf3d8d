"""Great Expectations Data Docs that render offline.

GX's pages load Bootstrap, jQuery, Font Awesome, Vega … from public CDNs; a government
intranet has no internet, so they would render unstyled. `make_offline` copies the same
files (vendored from the npm registry by scripts/vendor_datadocs_assets.sh into
data/vendor/datadocs/) next to the pages and points every page at them.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from jointdraw.transforms.storage.packaged import datadocs_vendor_dir

# CDN address in GX's templates (prefix match) → vendored file.
CDN_FILES = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker/bootstrap-datepicker.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "bootstrap-dark/bootstrap-prefers-dark.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper/popper.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/vega-embed.min.js",
}
# GX's logos come from its S3 bucket, with a timestamp query: a call home from every page view.
# They become the logo GX ships in the site's static/images/.
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
LOCAL_LOGO = "images/logo-long.png"
ASSET_ATTR = re.compile(r'(<(?:script|link|img)\b[^>]*?\b(?:src|href)=")(https?://[^"]+)(")', re.IGNORECASE)


class OfflineDocsError(RuntimeError):
    """A page loads an asset from the internet that is not vendored."""


def make_offline(site: Path) -> list[Path]:
    """Copies the vendored assets to `site/static/vendor/` and rewrites every page's
    <script src>, <link href> and <img src> to local files; returns the pages rewritten. Raises when a page
    loads an asset that is not vendored (a GX upgrade changed its templates)."""
    static = site / "static"
    shutil.copytree(datadocs_vendor_dir(), static / "vendor", dirs_exist_ok=True)
    for css in (static / "styles").glob("*.css"):  # the dark theme's logo, also from GX's bucket
        text = css.read_text(encoding="utf-8")
        css.write_text(re.sub(re.escape(GX_IMAGES) + r"[^'\")]+", f"../{LOCAL_LOGO}", text), encoding="utf-8")
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        to_static = Path(os.path.relpath(static, page.parent)).as_posix()

        def local(m: re.Match[str], to_static: str = to_static, page: Path = page) -> str:
            url = m.group(2)
            if url.startswith(GX_IMAGES):
                return f"{m.group(1)}{to_static}/{LOCAL_LOGO}{m.group(3)}"
            if url not in CDN_FILES:
                raise OfflineDocsError(
                    f"{page}: loads {url}, which is not vendored: add it to transforms/documents/datadocs.py "
                    "and scripts/vendor_datadocs_assets.sh"
                )
            return f"{m.group(1)}{to_static}/vendor/{CDN_FILES[url]}{m.group(3)}"

        text = page.read_text(encoding="utf-8")
        page.write_text(ASSET_ATTR.sub(local, text), encoding="utf-8")
    return pages
