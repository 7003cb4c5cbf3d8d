"""The seal and what `jointdraw verify` re-derives (issue 18): the dirty city's published bundle,
tampered with as an attacker would — a file edited together with its manifest entry, rows
removed, files hidden — and handed over by audience."""

import json
import shutil

import polars as pl
import pytest

from jointdraw.cli.commands import main
from jointdraw.transforms.documents.manifest import MANIFEST, file_digest
from jointdraw.transforms.documents.people_headers import NOTICE
from jointdraw.transforms.documents.seal import SEAL_PAGES, fill_seal, page_with_empty_slot, seal_of
from jointdraw.transforms.storage.bundle import AUDIT, PUBLIC, REGULATOR, bundle_file
from jointdraw.transforms.storage.runfolder import write_json
from jointdraw.transforms.storage.warehouse import audit_entries
from jointdraw.transforms.storage.xlsxout import write_people_xlsx
from jointdraw.transforms.verify import verify_draw

PLAN_ID = "SZ-2026-ANNUAL"


@pytest.fixture(scope="module")
def bundle(dirty_run):
    return dirty_run.parent.parent / "published" / PLAN_ID


@pytest.fixture(scope="module")
def seal(bundle):
    return seal_of(bundle / MANIFEST)


def _copy(bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    return copy


def _relist(copy, *paths):
    """What an attacker does after editing files: the manifest entries made to match them, and the
    pages made to show the new manifest's hash."""
    manifest = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    for record in [*manifest["files"], *manifest["documents"]]:
        if record["path"] in paths:
            record["sha256"] = file_digest(copy, record["path"])
            record["bytes"] = (copy / record["path"]).stat().st_size
    write_json(manifest, copy / MANIFEST)
    for page in SEAL_PAGES:
        path = bundle_file(copy, page)
        shown, text = page_with_empty_slot(path.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")
        fill_seal(path, seal_of(copy / MANIFEST))


def test_the_seal_is_printed_logged_shown_and_checked(bundle, dirty_run, seal, capsys):
    record = json.loads((dirty_run / "08_publish" / "stage.json").read_text(encoding="utf-8"))
    assert record["seal"] == seal
    logged = audit_entries(dirty_run.parent.parent, PLAN_ID)[-1]
    assert logged["event"] == "publish" and logged["seal"] == seal and logged["seq"] == record["seal_entry"]
    for page in ("notice.html", "report.html"):
        assert page_with_empty_slot(bundle_file(bundle, page).read_text(encoding="utf-8"))[0] == seal, page
    assert main(["verify", str(bundle), "--seal", seal]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("OK") and f"seal (封存值) {seal}" in printed and "derived files re-derived" in printed
    assert main(["verify", str(bundle), "--seal", "0" * 64]) == 1
    assert "it is not the bundle that was announced" in capsys.readouterr().out


def test_a_file_edited_with_its_manifest_entry_fails_against_the_announced_seal(bundle, seal, tmp_path):
    copy = _copy(bundle, tmp_path)
    notice = bundle_file(copy, "notice.csv")
    frame = pl.read_csv(notice, infer_schema=False)
    renamed = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("某某科技有限公司"))
        .otherwise(pl.col(NOTICE["name"]))
        .alias(NOTICE["name"])
    )
    notice.write_text("\ufeff" + renamed.write_csv(), encoding="utf-8")
    _relist(copy, "public/notice.csv")
    code = frame[NOTICE["joint_task_id"]][3]
    assert verify_draw(copy).problems == [f"public/notice.csv: the entity name of {code} is not the directory's"]
    problems = verify_draw(copy, seal=seal).problems
    assert any("it is not the bundle that was announced" in p for p in problems)


def test_a_row_removed_from_draws_csv_is_found(bundle, tmp_path):
    copy = _copy(bundle, tmp_path)
    draws = bundle_file(copy, "draws.csv")
    lines = draws.read_bytes().splitlines(keepends=True)
    draws.write_bytes(b"".join(lines[:10] + lines[11:]))
    _relist(copy, "audit/draws.csv")
    problems = verify_draw(copy).problems
    assert problems and problems[0].startswith("audit/draws.csv:") and "rows, expected" in problems[0], problems


def test_a_workbook_and_the_figures_are_re_derived_too(bundle, tmp_path):
    copy = _copy(bundle, tmp_path)
    notice = pl.read_csv(bundle_file(copy, "notice.csv"), infer_schema=False)
    write_people_xlsx(
        notice.with_columns(pl.col(NOTICE["district"]).str.replace("福田区", "南山区")),
        bundle_file(copy, "notice.xlsx"),
        sheet="公示名单",
    )
    summary = json.loads(bundle_file(copy, "summary.json").read_text(encoding="utf-8"))
    summary["visits_saved"] += 100
    write_json(summary, bundle_file(copy, "summary.json"))
    _relist(copy, "public/notice.xlsx", "public/summary.json")
    problems = verify_draw(copy).problems
    assert any(p.startswith("public/notice.xlsx row") and "所属区 is '南山区'" in p for p in problems), problems
    assert any(p.startswith("public/summary.json: not the figures the draws give") for p in problems), problems


def test_hidden_and_extra_files_must_be_in_the_manifest(bundle, tmp_path):
    copy = _copy(bundle, tmp_path)
    (copy / PUBLIC / ".extra.html").write_text("<script>alert(1)</script>", encoding="utf-8")
    (copy / REGULATOR / ".hidden").mkdir()
    (copy / REGULATOR / ".hidden" / "evil.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (copy / AUDIT / "notes.txt").write_text("x", encoding="utf-8")
    problems = verify_draw(copy).problems
    for path in ("public/.extra.html", "regulator/.hidden/evil.csv", "audit/notes.txt"):
        assert f"public/manifest.json: {path} is in the bundle but not in the manifest" in problems, problems


def test_a_page_showing_another_seal_is_found(bundle, tmp_path):
    copy = _copy(bundle, tmp_path)
    page = bundle_file(copy, "notice.html")
    text = page.read_text(encoding="utf-8")
    shown, _ = page_with_empty_slot(text)
    page.write_text(text.replace(shown, "f" * 64), encoding="utf-8")
    assert verify_draw(copy).problems == [
        f"public/notice.html shows the seal {'f' * 64}, the manifest's SHA-256 is {shown}"
    ]


def test_the_public_and_audit_parts_alone_verify_against_the_seal(bundle, seal, tmp_path, capsys):
    handed = tmp_path / "handed-to-a-notary"
    for part in (PUBLIC, AUDIT):
        shutil.copytree(bundle / part, handed / part)
    report = verify_draw(handed, seal=seal)
    assert report.ok and report.checked_draws > 0, report.text()
    assert any("the regulator part is not here" in n for n in report.notes)
    # and a part handed over alone names what is missing
    only_public = tmp_path / "only-public"
    shutil.copytree(bundle / PUBLIC, only_public / PUBLIC)
    assert main(["verify", str(only_public / PUBLIC)]) == 1
    assert "missing files in" in capsys.readouterr().out
