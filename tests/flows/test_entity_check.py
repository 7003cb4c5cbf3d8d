"""Check one entity yourself (核验, issue 17): the page's few lines of standard Python, run by a plain
interpreter, give the score `jointdraw verify --entity` prints, and the published cut-off says drawn
or not exactly as the draw did — for a drawn entity and for one that was eligible and not drawn."""

import html
import re
import subprocess
import sys

import polars as pl
import pytest

from jointdraw.cli.commands import main
from jointdraw.transforms.storage.bundle import bundle_file


@pytest.fixture(scope="module")
def bundle(dirty_run):
    return dirty_run.parent.parent / "published" / "SZ-2026-ANNUAL"


def _page_snippet(bundle, key: str, uscc: str) -> str:
    page = bundle_file(bundle, "report.html").read_text(encoding="utf-8")
    snippet = html.unescape(re.search(r'<pre id="score-snippet">(.*?)</pre>', page, re.S).group(1))
    assert "import hashlib" in snippet and "seed = 'SZ-2026-ANNUAL-demo-seed'" in snippet
    snippet = re.sub(r"^key = .*$", f"key = {key!r}", snippet, flags=re.M)
    return re.sub(r"^uscc = .*$", f"uscc = {uscc!r}", snippet, flags=re.M)


def _plain_python(code: str) -> str:
    """Runs code in an isolated interpreter: standard library only, no site-packages, no project."""
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_anyone_can_check_a_drawn_and_an_undrawn_entity(bundle, capsys):
    draws = pl.read_parquet(bundle_file(bundle, "draws.parquet"))
    strata = pl.read_csv(bundle_file(bundle, "strata.csv"), infer_schema=False)
    drawn = draws.row(0, named=True)
    # an entity every draw passed over although it was eligible: it scores above its stratum's cut-off
    main(["verify", "--entity", drawn["uscc"], str(bundle)])
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.strip().startswith(f"{drawn['task_id']}:"))
    assert "DRAWN" in line and f"= {drawn['score']};" in line
    assert _plain_python(_page_snippet(bundle, drawn["score_key"], drawn["uscc"])) == str(drawn["score"])
    cutoff = int(
        strata.filter((pl.col("抽查任务编号") == drawn["task_id"]) & (pl.col("信用风险分类") == drawn["credit_risk"]))[
            "入选分数线（本层第k低评分）"
        ][0]
    )
    assert drawn["score"] <= cutoff

    directory = pl.read_parquet(bundle_file(bundle, "directory.parquet")).filter(pl.col("status") == "active")
    candidates = directory.join(draws, on="uscc", how="anti").filter(
        pl.col("departments").list.contains(drawn["department"])
    )
    for uscc in candidates["uscc"].drop_nulls().head(50):
        main(["verify", "--entity", uscc, str(bundle)])
        lines = [s.strip() for s in capsys.readouterr().out.splitlines() if "not drawn: score" in s]
        if lines:
            break
    else:
        pytest.fail("no eligible, undrawn entity among 50 candidates")
    task_id, score = re.match(r"(\S+): not drawn: score\(seed, '([^']+)', '[^']+'\) = (\d+);", lines[0]).group(1, 3)
    key = re.match(r"\S+: not drawn: score\(seed, '([^']+)'", lines[0]).group(1)
    assert _plain_python(_page_snippet(bundle, key, uscc)) == score
    klass = directory.filter(pl.col("uscc") == uscc)["credit_risk"][0]
    cutoff = int(
        strata.filter((pl.col("抽查任务编号") == task_id) & (pl.col("信用风险分类") == klass))[
            "入选分数线（本层第k低评分）"
        ][0]
    )
    assert int(score) > cutoff  # above the cut-off: not drawn, as the draw said
