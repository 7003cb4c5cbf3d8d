#!/usr/bin/env bash
# Refreshes data/vendor/datadocs/: the CSS/JS that Great Expectations' Data Docs load from
# public CDNs, taken from the npm registry at the exact versions GX's templates name, so the
# validation pages render offline (government intranets have no internet). The files are
# committed; this script is only rerun when GX's templates change (needs npm).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/data/vendor/datadocs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
fetch() {  # fetch PACKAGE@VERSION DIR: unpack the npm tarball into DIR
    local tgz
    tgz="$(npm pack --silent "$1" | tail -1)"
    mkdir -p "$2" && tar -xzf "$tgz" -C "$2" --strip-components=1
}
fetch bootstrap@4.3.1 bootstrap
fetch bootstrap-table@1.19.1 bootstrap-table
fetch bootstrap-datepicker@1.9.0 bootstrap-datepicker
fetch @forevolve/bootstrap-dark@1.1.0 bootstrap-dark
fetch jquery@3.7.1 jquery
fetch popper.js@1.12.9 popper
fetch @fortawesome/fontawesome-free@6.6.0 fontawesome
fetch vega@5 vega
fetch vega-lite@5 vega-lite
fetch vega-embed@6 vega-embed
rm -rf "$dest" && mkdir -p "$dest"
copy() { mkdir -p "$dest/$(dirname "$2")" && cp "$1" "$dest/$2"; }
copy bootstrap/dist/css/bootstrap.min.css bootstrap/bootstrap.min.css
copy bootstrap/dist/js/bootstrap.min.js bootstrap/bootstrap.min.js
copy bootstrap-table/dist/bootstrap-table.min.css bootstrap-table/bootstrap-table.min.css
copy bootstrap-table/dist/bootstrap-table.min.js bootstrap-table/bootstrap-table.min.js
copy bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css bootstrap-table/bootstrap-table-filter-control.min.css
copy bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js bootstrap-table/bootstrap-table-filter-control.min.js
copy bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css bootstrap-datepicker/bootstrap-datepicker.min.css
copy bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js bootstrap-datepicker/bootstrap-datepicker.min.js
copy bootstrap-dark/dist/css/bootstrap-prefers-dark.css bootstrap-dark/bootstrap-prefers-dark.css
copy jquery/dist/jquery.min.js jquery/jquery.min.js
copy popper/dist/umd/popper.min.js popper/popper.min.js
copy fontawesome/css/all.min.css fontawesome/css/all.min.css
mkdir -p "$dest/fontawesome/webfonts" && cp fontawesome/webfonts/*.woff2 "$dest/fontawesome/webfonts/"
copy vega/build/vega.min.js vega/vega.min.js
copy vega-lite/build/vega-lite.min.js vega-lite/vega-lite.min.js
copy vega-embed/build/vega-embed.min.js vega-embed/vega-embed.min.js
for p in bootstrap bootstrap-table bootstrap-datepicker bootstrap-dark jquery popper fontawesome vega vega-lite vega-embed; do
    lic="$(ls "$p" | grep -i -m1 '^licen[cs]e' || true)"
    [[ -n "$lic" ]] && cp "$p/$lic" "$dest/$p/LICENSE"
    echo "$p $(node -p "require('./$p/package.json').version")" >> "$dest/VERSIONS"
done
echo "vendored into $dest: $(du -sh "$dest" | cut -f1)"
