"""The audit log of draw attempts (issue 11, first part): every attempt that reaches the draw is
chained in the warehouse; an edited, deleted or reordered entry breaks the chain and `jointdraw
audit` says which; two seeds for one commitment are flagged; a rerun is not a new attempt."""

import shutil

import pytest

from jointdraw.cli.commands import main
from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.audit import attempts, chain_problems, entry_hash, next_entry, seed_shopping
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.warehouse import audit_entries, connect_warehouse
from tests.conftest import plan_path


def _entries(n, seeds=None):
    entries, last = [], None
    for i in range(n):
        last = next_entry(
            last,
            plan_id="P",
            time=f"2026-03-0{i + 1}T02:00:00+00:00",
            run_id=f"r{i}",
            commitment="c" * 64,
            seed=(seeds or ["s"] * n)[i],
            seed_sources="[]",
            draw_digest=f"{i:064d}",
            operator="ops@host",
        )
        entries.append(last)
    return entries


def test_an_edited_deleted_or_reordered_entry_breaks_the_chain_at_its_link():
    entries = _entries(4)
    assert chain_problems(entries) == []
    edited = [dict(e) for e in entries]
    edited[1]["seed"] = "a better seed"
    assert chain_problems(edited) == ["entry 2 (run r1) does not match its hash: it was edited"]
    deleted = entries[:1] + entries[2:]
    assert chain_problems(deleted) == ["entry 2 is missing: the chain jumps to entry 3 (deleted?)"]
    swapped = [dict(e) for e in entries]
    swapped[1]["seq"], swapped[2]["seq"] = 3, 2  # renumbered to hide the order: their hashes no longer match
    assert chain_problems(swapped) == ["entry 2 (run r2) does not match its hash: it was edited"]
    reordered = [dict(e) for e in (entries[0], entries[2], entries[1], entries[3])]
    for i, e in enumerate(
        reordered, start=1
    ):  # renumbered and each rehashed: the previous-hash links still give it away
        e["seq"] = i
        e["entry_hash"] = entry_hash(e)
    assert chain_problems(reordered) == ["entry 2 (run r2) does not follow entry 1: deleted or reordered"]


def test_two_seeds_for_one_commitment_are_seed_shopping():
    assert seed_shopping(_entries(3)) == {}
    shopped = seed_shopping(_entries(3, seeds=["s1", "s2", "s1"]))
    assert list(shopped) == ["c" * 64] and [e["seed"] for e in shopped["c" * 64]] == ["s1", "s2", "s1"]


def test_attempts_are_logged_once_and_the_audit_command_checks_them(
    prefect_server, dirty_run, dirty_city, tmp_path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(dirty_run.parent.parent, out)
    plan = str(plan_path(dirty_city))
    first = audit_entries(out, "SZ-2026-ANNUAL")
    assert [(e["run_id"], e["event"]) for e in first] == [
        ("dirty", None),
        ("dirty", "publish"),
    ]  # the draw, then its seal
    # a rerun from assign, and a rerun of the draw with the same seed, are not new attempts
    plan_run(
        plan=plan, inbox=str(dirty_city / "inbox"), out=str(out), run_id="dirty", start_at="assign", stop_after="assign"
    )
    plan_run(
        plan=plan, inbox=str(dirty_city / "inbox"), out=str(out), run_id="dirty", start_at="draw", stop_after="draw"
    )
    assert len(audit_entries(out, "SZ-2026-ANNUAL")) == 2
    # another seed for the same commitment is
    plan_run(
        plan=plan,
        inbox=str(dirty_city / "inbox"),
        out=str(out),
        run_id="dirty",
        start_at="draw",
        stop_after="draw",
        seed="a seed I like better",
    )
    entries = audit_entries(out, "SZ-2026-ANNUAL")
    assert [e["seq"] for e in attempts(entries)] == [1, 3] and entries[2]["prev_hash"] == entries[1]["entry_hash"]
    assert main(["audit", "SZ-2026-ANNUAL", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SEED SHOPPING?" in printed and "a seed I like better" in printed and "is intact" in printed
    con = connect_warehouse(out)
    con.execute("update audit_log set seed = 'SZ-2026-ANNUAL-demo-seed' where seq = 3")  # someone covers their tracks
    con.close()
    assert main(["audit", "SZ-2026-ANNUAL", "--out", str(out)]) == 1
    assert "entry 3 (run dirty) does not match its hash: it was edited" in capsys.readouterr().out


def _events(prefix: str) -> list[dict]:
    """The newest 50 events of the session's Prefect server whose name starts with `prefix`."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {
        "filter": {"event": {"prefix": [prefix]}, "occurred": {"since": "2000-01-01T00:00:00Z"}, "order": "DESC"},
        "limit": 50,
    }
    answer = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body, timeout=10)
    assert answer.status_code == 200, answer.text[:1000]
    return answer.json()["events"]


def _the_new_entries_are_prefect_events(out, seed):
    """Issue 19: the chain's head leaves the building — each new draw attempt (with the seed-shopping
    flag) and each seal is emitted as a Prefect event, where an automation can react to it."""
    import time

    logged = {e["entry_hash"]: e for e in audit_entries(out, "SZ-2026-ANNUAL")[-2:]}  # the new attempt and the new seal
    deadline, found = time.monotonic() + 60, {}
    while len(found) < 2 and time.monotonic() < deadline:
        found = {
            e["payload"]["entry_hash"]: e for e in _events("jointdraw.") if e["payload"].get("entry_hash") in logged
        }
        time.sleep(1)
    assert set(found) == set(logged)
    attempt = next(e for e in found.values() if e["event"] == "jointdraw.draw.attempt")
    assert attempt["payload"]["seed"] == seed and attempt["payload"]["seed_shopping"] is True
    assert attempt["resource"]["prefect.resource.id"] == "jointdraw.plan.SZ-2026-ANNUAL"
    sealed = next(e for e in found.values() if e["event"] == "jointdraw.publish.sealed")
    assert sealed["payload"]["prev_hash"] == attempt["payload"]["entry_hash"]  # the chain, as the warehouse holds it


def test_a_plan_without_attempts_says_so(tmp_path, capsys):
    assert main(["audit", "NOTHING", "--out", str(tmp_path)]) == 1
    assert "no draw attempts" in capsys.readouterr().out


def test_the_manifest_report_and_verify_say_when_a_commitment_had_two_seeds(
    prefect_server, dirty_run, dirty_city, tmp_path, capsys
):
    """The bundle carries its plan's chain; verify checks it alone and flags seed shopping; the new
    entries are Prefect events too."""
    import json

    out = tmp_path / "out"
    shutil.copytree(dirty_run.parent.parent, out)
    bundle = out / "published" / "SZ-2026-ANNUAL"
    assert main(["verify", str(bundle)]) == 0
    clean = capsys.readouterr().out
    assert "audit chain of 1 attempts checked" in clean and "SEED SHOPPING" not in clean
    plan = str(plan_path(dirty_city))
    plan_run(
        plan=plan,
        inbox=str(dirty_city / "inbox"),
        out=str(out),
        run_id="dirty",
        start_at="draw",
        seed="a seed I like better",
    )
    _the_new_entries_are_prefect_events(out, "a seed I like better")
    manifest = json.loads(bundle_file(bundle, "manifest.json").read_text(encoding="utf-8"))
    log = json.loads(bundle_file(bundle, "attempts.json").read_text(encoding="utf-8"))
    assert [e["seed"] for e in attempts(log["entries"])] == ["SZ-2026-ANNUAL-demo-seed", "a seed I like better"]
    assert list(manifest["audit"]["seed_shopping"].values()) == [[1, 3]] and manifest["audit"]["attempts"] == 2
    assert "同一承诺值使用了多个随机种子" in bundle_file(bundle, "report.html").read_text(encoding="utf-8")
    assert main(["verify", str(bundle)]) == 0  # the draw itself is right …
    printed = capsys.readouterr().out
    assert (
        printed.startswith("WARNING: SEED SHOPPING?") and "#1" in printed and "#3" in printed
    )  # … and the repeat is said first
    # a bundle whose chain was edited fails verify
    log["entries"][0]["seed"] = "something else"
    bundle_file(bundle, "attempts.json").write_text(json.dumps(log, ensure_ascii=False), encoding="utf-8")
    assert main(["verify", str(bundle)]) == 1
    assert "audit: entry 1 (run dirty) does not match its hash: it was edited" in capsys.readouterr().out


def test_a_public_seed_policy_refuses_a_plain_seed_and_a_late_commitment(prefect_server, small_city, tmp_path):
    import datetime as dt

    import yaml

    from jointdraw.transforms.plan import PlanError, read_plan
    from jointdraw.transforms.seed import SeedError, public_seed_problems

    announced, before, after = (
        dt.datetime(2026, 3, 1, 21, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC),
    )
    assert public_seed_problems(None, ["9 18 26"], announced, before) == []
    assert "a plain seed is refused" in public_seed_problems("mine", None, announced, before)[0]
    assert "needs the announced public numbers" in public_seed_problems(None, [], announced, before)[0]
    assert "not before the numbers were announced" in public_seed_problems(None, ["9 18 26"], announced, after)[0]

    data = yaml.safe_load(plan_path(small_city).read_text(encoding="utf-8"))
    data.update({"seed_policy": "public", "seed": None, "seed_sources": []})
    path = tmp_path / "public.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PlanError, match="seed_announced_at"):
        read_plan(path)  # the policy needs the announcement's date
    data["seed_announced_at"] = "2099-03-01T21:30:00+08:00"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    common = {"plan": str(path), "inbox": str(small_city / "inbox"), "out": str(tmp_path / "out"), "stop_after": "draw"}
    with pytest.raises(SeedError, match="a plain seed is refused"):
        plan_run(**common, run_id="plain", seed="picked by hand")
    runs = tmp_path / "out" / "runs"
    assert not (runs / "plain" / "05_draw" / "draws.parquet").exists()
    for stage in (
        "01_ingest",
        "02_validate",
        "03_merge",
        "04_commit",
    ):  # the refused run's commitment, drawn with the numbers
        shutil.copytree(runs / "plain" / stage, runs / "public" / stage)
    plan_run(**common, run_id="public", start_at="draw", seed_sources=["9319", "2 5 12 8 10"])
    import json

    seed = json.loads((tmp_path / "out" / "runs" / "public" / "05_draw" / "seed.json").read_text(encoding="utf-8"))
    committed = json.loads(
        (tmp_path / "out" / "runs" / "public" / "04_commit" / "commitment.json").read_text(encoding="utf-8")
    )
    assert seed["seed"] == "9319./2.5.8.10.12./" and seed["sources_announced_at"] == "2099-03-01T21:30:00+08:00"
    assert committed["committed_at"] < "2099"  # both times recorded
