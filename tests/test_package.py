"""The package another machine installs (issue 19): one import name, the files it needs inside,
a pinned build backend, a licence. (Running the installed package — a draw outside the checkout,
on Dask workers of the same environment, verified — is tests/flows/test_dask.py.)"""

import tomllib
import zipfile

from tests.conftest import ROOT

SHIPPED = ["data/reference", "data/vendor/datadocs", "transforms/sql", "transforms/documents/templates"]


def test_the_wheel_holds_one_import_name_and_every_file_it_reads(installed):
    (wheel,) = (installed.parent.parent / "dist").glob("jointdraw-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"jointdraw", wheel.name.split("-py3")[0] + ".dist-info"}
    inside = {n.removeprefix("jointdraw/") for n in names if n.startswith("jointdraw/")}
    wanted = {p.relative_to(ROOT).as_posix() for folder in SHIPPED for p in (ROOT / folder).rglob("*") if p.is_file()}
    assert wanted - inside == set()
    assert {"cli/commands.py", "transforms/uscc.py", "data/__init__.py"} <= inside
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_build_backend_is_pinned_and_the_licence_is_at_the_root():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert all("==" in r for r in project["build-system"]["requires"]), project["build-system"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    assert project["project"]["license"] == "Apache-2.0"
