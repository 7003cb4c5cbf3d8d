"""What each stage records (its `stage.json`), one typed record per stage (issue 20).

A record is the one place that knows a stage's figures: the line the log and the progress
bar show when the stage is done (`line`), its part of the end-of-run summary (`report`: tables
and lines), its Prefect artifacts (`artifacts`), and the counts the manifest publishes
(`accounting`). The stage runner (flows/stage.py) writes it as stage.json; readers get it back
typed (`read_record`), so a misspelt figure fails where it is written, not after the stage.

    record = MergeRecord(records_in=…, entities=…, …)      built by the stage
    record.line()          "19,517 records → 14,498 entities (…)"
    record.report(run_dir) [Table(...), "merge (名录合并): …"]
    record.artifacts(run)  [Artifact(kind="table", key="…", …)]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_serializer

from jointdraw.transforms.documents.certificate import draw_certificate
from jointdraw.transforms.documents.ingest_summary import ingest_summary
from jointdraw.transforms.documents.report import validation_table
from jointdraw.transforms.fusion_figures import figure_rows, figure_text


class OmitsAbsent(BaseModel):
    """A record whose `OMITTED_WHEN_NONE` fields are left out of its JSON when they are None: a field added
    later leaves the records that never set it as they were written before."""

    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _absent_left_out(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for key in self.OMITTED_WHEN_NONE:
            if data.get(key) is None:
                data.pop(key, None)
        return data


class FileRecord(OmitsAbsent):
    """A file a stage read or wrote: path (relative to the stage folder, or to the run folder for
    an earlier stage's file), SHA-256, size when known, rows when it has rows."""

    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str
    bytes: int | None = None
    rows: int | None = None

    OMITTED_WHEN_NONE = ("bytes",)  # an earlier stage's file: its size is in that stage's record


class ReuseKey(OmitsAbsent):
    """What a later run finds this result by (issue 23.4, transforms/storage/reuse.py): the SHA-256 of
    everything it depends on; for a validated file also its Great Expectations results for Data Docs,
    kept beside its outputs (a later run that takes the file shows them in its own Data Docs)."""

    model_config = ConfigDict(extra="forbid")
    key: str
    docs: FileRecord | None = None

    OMITTED_WHEN_NONE = ("docs",)


class ReusedFrom(BaseModel):
    """A result taken from an earlier run in the same output root instead of being computed (issue 23.4):
    the run it was taken from; its files were linked (or copied) after their SHA-256 was checked."""

    model_config = ConfigDict(extra="forbid")
    run_id: str

    def text(self) -> str:
        return f"reused from run {self.run_id}"


class UpdatedFrom(BaseModel):
    """A directory merged again from an earlier run's (issue 23.4): that run, the departments whose accepted
    objects files differ from the ones it merged, and the entities merged again (those whose records may differ);
    the others' rows and conflicts were taken from it."""

    model_config = ConfigDict(extra="forbid")
    run_id: str
    departments: list[str]
    entities_merged_again: int
    # the SHA-256 of the earlier directory's files the other rows were taken from, in order (what names that
    # directory in the warehouse, which then stores this one as the rows that differ from it: transforms/storage/
    # reuse.py `merged_again`); None in records written before
    directory_sha256: list[str] | None = None

    def text(self) -> str:
        entities = "entity" if self.entities_merged_again == 1 else "entities"
        return (
            f"updated from run {self.run_id} ({', '.join(self.departments)} changed: "
            f"{self.entities_merged_again:,} {entities} merged again)"
        )


def reused_from(entry: dict[str, Any]) -> ReusedFrom | None:
    """Where a file's record (ingest, validate) says it was taken from; None: computed in this run."""
    return ReusedFrom.model_validate(entry["reused_from"]) if entry.get("reused_from") else None


def _reused_files(files: list[dict[str, Any]]) -> str:
    """' (35 of 36 files reused from earlier runs)' for the stage's line; nothing when none was."""
    n = sum(1 for f in files if f.get("reused_from"))
    return f" ({n} of {len(files)} files reused from earlier runs)" if n else ""


@dataclass(frozen=True)
class Table:
    """A table of the end-of-run summary."""

    title: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Artifact:
    """A Prefect artifact of the flow run: a table, a markdown page or a link."""

    kind: Literal["table", "markdown", "link"]
    key: str
    description: str
    table: list[dict[str, Any]] = field(default_factory=list)
    markdown: str = ""
    link: str = ""
    link_text: str = ""


Shown = Table | str  # a part of the end-of-run summary: a table or a line (rich markup allowed)


class StageRecord(OmitsAbsent):
    """What every stage records: its name and how long it took; each stage adds its figures."""

    model_config = ConfigDict(extra="forbid")
    label: ClassVar[str] = ""  # the stage's name for people: "merge (名录合并)"
    stage: str
    seconds: float = 0.0

    def line(self) -> str:
        """The stage's one line: what went in, what came out."""
        raise NotImplementedError

    def report(self, run_dir: Path) -> list[Shown]:
        """The stage's part of the end-of-run summary."""
        return [f"{self.label}: {self.line()}; {self.seconds:.1f} s"]

    def artifacts(self, run_id: str) -> list[Artifact]:
        """The Prefect artifacts the stage leaves on its flow run."""
        return []

    def accounting(self) -> dict[str, Any]:
        """The stage's counts as the manifest publishes them."""
        return {}


class IngestRecord(StageRecord):
    label: ClassVar[str] = "ingest (数据归集)"
    stage: Literal["ingest"] = "ingest"
    inbox: str
    # per department file: source, encoding, header, skipped rows, outputs (or error); `reuse` (ReuseKey) and, when
    # taken from an earlier run, `reused_from` (ReusedFrom)
    files: list[dict[str, Any]]
    ignored: list[dict[str, Any]]
    failed_departments: list[dict[str, Any]]
    rows_read: int
    rows_written: int
    rows_skipped: int  # titles, blank rows, notes: never data

    def line(self) -> str:
        return (
            f"{self.rows_read:,} rows read = {self.rows_written:,} written, {len(self.files)} files"
            f"{_reused_files(self.files)}"
        )

    def table(self) -> list[dict[str, Any]]:
        """Rows per department and registry kind, and a total row."""
        return ingest_summary(self.model_dump()).to_dicts()

    def report(self, run_dir: Path) -> list[Shown]:
        skipped = (
            f" ({self.rows_skipped:,} rows without data skipped: titles, blank rows, notes; listed in stage.json)"
            if self.rows_skipped
            else ""
        )
        return [
            Table(f"{self.label}: rows per department and registry — run {Path(run_dir).name}", self.table()),
            f"rows read {self.rows_read:,} = rows written {self.rows_written:,}{skipped}{_reused_files(self.files)}; "
            f"{self.seconds:.1f} s",
        ]

    def artifacts(self, run_id: str) -> list[Artifact]:
        return [
            Artifact(
                "table", "ingest-rows", f"Rows ingested per department and registry, run {run_id}", table=self.table()
            )
        ]

    def accounting(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "files": len(self.files),
            "failed_departments": self.failed_departments,
        }


class ValidateRecord(StageRecord):
    label: ClassVar[str] = "validate (数据校验)"
    stage: Literal["validate"] = "validate"
    inputs: list[FileRecord] = []
    run_date: str
    threshold: float
    # per department file: read, accepted, quarantined by reason (or file problems); `reuse`, `reused_from` as ingest's
    files: list[dict[str, Any]]
    kinds: dict[str, dict[str, Any]]  # per registry kind: read, quarantined, share, top reasons
    quarantine_csv: FileRecord
    data_docs: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int

    def line(self) -> str:
        return (
            f"{self.rows_read:,} rows in, {self.rows_accepted:,} accepted, {self.rows_quarantined:,} quarantined"
            f"{_reused_files(self.files)}"
        )

    def table(self) -> list[dict[str, Any]]:
        """One row per department file: read, accepted, quarantined, why."""
        return validation_table(self.model_dump()).drop("file").to_dicts()

    def report(self, run_dir: Path) -> list[Shown]:
        rows = [
            {
                **{k: v for k, v in r.items() if k != "reasons"},
                "top reason": (r["reasons"].split(" ")[0] if r["reasons"] else ""),
            }
            for r in self.table()
        ]
        return [
            Table(f"{self.label}: the data contract per department file", rows),
            f"read {self.rows_read:,} = accepted {self.rows_accepted:,} + quarantined {self.rows_quarantined:,}"
            f"{_reused_files(self.files)}; "
            f"{self.seconds:.1f} s; Data Docs: {Path(run_dir) / '02_validate' / self.data_docs}",
        ]

    def artifacts(self, run_id: str) -> list[Artifact]:
        return [
            Artifact(
                "table",
                "validation-results",
                f"Data contract per department file, run {run_id}",
                table=self.table(),
            )
        ]

    def file_lines(self) -> list[tuple[bool, str]]:
        """Per department file, for the log: (whether it failed, what happened to it)."""
        return [
            (True, f"{f['file']}: {'; '.join(f['file_problems'])}")
            if "file_problems" in f
            else (
                False,
                f"{f['file']} {f['rows_read']:,} read, {f['rows_accepted']:,} accepted, {f['rows_quarantined']:,} "
                f"quarantined {f['quarantined_by_reason'] or ''}"
                + (f"— {taken.text()}" if (taken := reused_from(f)) else ""),
            )
            for f in self.files
        ]

    def failures(self, folder: Path) -> list[str]:
        """Why the contract is not met (empty: it is): each department file that broke a file-level
        rule, each registry kind whose quarantined share passes the threshold (corrections: never)."""
        from jointdraw.transforms.registry import NO_THRESHOLD_KINDS

        failures = [
            f"  - {f['department']}: {f['file']}: {'; '.join(f['file_problems'])}"
            for f in self.files
            if "file_problems" in f
        ]
        return failures + [
            f"  - {kind}: {s['quarantined']:,} of {s['read']:,} rows quarantined ({s['share']:.2%}) > threshold "
            f"{self.threshold:.2%}; top reasons: {s['top_reasons']}; see {Path(folder) / 'quarantine.csv'}"
            for kind, s in self.kinds.items()
            if s["share"] > self.threshold and kind not in NO_THRESHOLD_KINDS
        ]

    def quarantined_by_reason(self) -> dict[str, int]:
        by_reason: dict[str, int] = {}
        for f in self.files:
            for reason, n in f.get("quarantined_by_reason", {}).items():
                by_reason[reason] = by_reason.get(reason, 0) + n
        return dict(sorted(by_reason.items()))

    def accounting(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "quarantined_by_reason": self.quarantined_by_reason(),
            "per_file": [
                {
                    "file": f.get("file"),
                    "read": f["rows_read"],
                    "accepted": f.get("rows_accepted"),
                    "quarantined": f.get("rows_quarantined"),
                }
                for f in self.files
            ],
        }


class MergeRecord(StageRecord):
    label: ClassVar[str] = "merge (名录合并)"
    stage: Literal["merge"] = "merge"
    inputs: list[FileRecord]
    records_in: int
    entities: int
    entities_listed_by_several_departments: int
    entities_by_link: dict[str, int]  # how each entity's records were linked: uscc, org_code, unlinked
    unlinked_entities: int
    conflicts_by_attribute: dict[str, int]
    type_conflicts: int  # registered type vs the USCC's entity class (GB 32100)
    outputs: list[FileRecord]
    reuse: ReuseKey | None = None
    reused_from: ReusedFrom | None = None  # the directory was taken from this run: same accepted objects files
    updated_from: UpdatedFrom | None = None  # merged again from this run's: some departments' files changed

    OMITTED_WHEN_NONE = ("reuse", "reused_from", "updated_from")

    def line(self) -> str:
        earlier = self.reused_from or self.updated_from
        taken = f"{earlier.text()}: " if earlier else ""
        several = self.entities_listed_by_several_departments
        return (
            f"{taken}{self.records_in:,} records → {self.entities:,} entities ({several:,}"
            f" listed by several departments, {self.unlinked_entities:,} unlinked); conflicts "
            f"{self.conflicts_by_attribute or 'none'}; {self.type_conflicts:,} records whose registered type "
            f"contradicts their USCC (type_conflicts.csv)"
        )

    def accounting(self) -> dict[str, Any]:
        return self.model_dump(
            include={
                "records_in",
                "entities",
                "entities_listed_by_several_departments",
                "unlinked_entities",
                "conflicts_by_attribute",
            }
        )


class CommitRecord(StageRecord):
    label: ClassVar[str] = "commit (承诺)"
    stage: Literal["commit"] = "commit"
    inputs: list[FileRecord]
    version: str  # the commitment's version (transforms/commitment.py)
    directory_sha256: str
    exclusions_sha256: str
    plan_sha256: str
    pre_sha256: str | None = None
    commitment: str
    history_rows: int
    exclusions_by_reason: dict[str, int]
    outputs: list[FileRecord]
    prepublished: str  # where the publication before the draw went (事前公示)
    reuse: ReuseKey | None = None  # what a later run finds directory_sha256 by (reuse.py `directory_digest_key`)
    directory_sha256_from: str | None = None  # the run whose commit computed directory_sha256 (absent: this one)

    OMITTED_WHEN_NONE = ("reuse", "directory_sha256_from")

    def line(self) -> str:
        taken = f" (the directory's digest from run {self.directory_sha256_from})" if self.directory_sha256_from else ""
        return (
            f"commitment {self.commitment}{taken} (directory {self.directory_sha256[:12]}…, exclusions "
            f"{self.exclusions_sha256[:12]}…, plan {self.plan_sha256[:12]}…); excluded "
            f"{self.exclusions_by_reason or 'none'}; the item list and the plan notice are public before the draw "
            f"in {self.prepublished} (事前公示)"
        )

    def report(self, run_dir: Path) -> list[Shown]:
        return [f"{self.label}: {self.commitment}; excluded {self.exclusions_by_reason or 'none'}"]

    def accounting(self) -> dict[str, Any]:
        return {"excluded_by_reason": self.exclusions_by_reason}


def _in_scope_text(in_scope: dict[str, Any]) -> str:
    """' (the in-scope pairs reused from run X)' when every part's were; ' (the in-scope pairs of 1 of 2 parts reused
    from run X)' when some were; nothing when none was."""
    parts = in_scope.get("parts", [])
    taken = [r.run_id for p in parts if (r := reused_from(p))]
    if not taken:
        return ""
    share = "" if len(taken) == len(parts) else f" of {len(taken)} of {len(parts)} parts"
    return f" (the in-scope pairs{share} reused from run {', '.join(sorted(set(taken)))})"


class DrawRecord(StageRecord):
    label: ClassVar[str] = "draw (随机抽取)"
    stage: Literal["draw"] = "draw"
    inputs: list[FileRecord]
    seed_origin: str
    commitment: str
    eligible_pairs: int
    strata: int
    drawn: int
    tasks_without_eligible: list[str]  # tasks nobody was eligible for: they drew nothing
    mode: Literal["independent", "coordinated"]
    fusion: dict[str, dict[str, int | float]]  # the fusion figures of both modes, the one used and the other
    audit: dict[str, Any]  # the audit log entry of this attempt
    outputs: list[FileRecord]
    # each part's in-scope pairs (the eligible pairs before the exclusions), kept for a later run of the same
    # directory part and task scopes: `parts`, each with `reuse` (ReuseKey), `outputs`, and when taken from an
    # earlier run `reused_from`
    in_scope_pairs: dict[str, Any] | None = None

    OMITTED_WHEN_NONE = ("in_scope_pairs",)

    def line(self) -> str:
        other = next(m for m in self.fusion if m != self.mode)
        empty = (
            f"; {len(self.tasks_without_eligible)} task(s) with no eligible object drew nothing: "
            f"{', '.join(self.tasks_without_eligible)}"
            if self.tasks_without_eligible
            else ""
        )
        rate = {m: figure_text("reduction_rate", f["reduction_rate"]) for m, f in self.fusion.items()}
        scoped = _in_scope_text(self.in_scope_pairs or {})
        return (
            f"{self.eligible_pairs:,} eligible pairs{scoped} in {self.strata:,} strata → {self.drawn:,} draws "
            f"(seed {self.seed_origin}); reduction {rate[self.mode]}, {rate[other]} if {other}{empty}"
        )

    def report(self, run_dir: Path) -> list[Shown]:
        short = {
            "drawn_total": "drawn",
            "duplicate_entities": "dup. entities",
            "joint_tasks": "joint tasks",
            "visits_saved": "saved",
            "reduction_rate": "reduction",
        }
        shown: list[Shown] = [
            f"{self.label}: {self.eligible_pairs:,} eligible pairs in {self.strata:,} strata → {self.drawn:,} draws; "
            f"seed {self.seed_origin}; {self.seconds:.1f} s"
        ]
        if self.tasks_without_eligible:
            shown.append(
                f"[bold red]{len(self.tasks_without_eligible)} task(s) had no eligible object and drew nothing:[/] "
                f"{', '.join(self.tasks_without_eligible)}"
            )
        rows = [{"mode": m, **{short[k]: figure_text(k, v) for k, v in f.items()}} for m, f in self.fusion.items()]
        shown.append(Table(f"fusion figures (查重融合; SPEC §4.5 names in stage.json), mode used: {self.mode}", rows))
        return shown

    def artifacts(self, run_id: str) -> list[Artifact]:
        rows = [{"mode": m, **f} for m, f in self.fusion.items()]
        return [Artifact("table", "fusion-figures", f"Fusion figures (SPEC §4.5), run {run_id}", table=rows)]

    def accounting(self) -> dict[str, Any]:
        return self.model_dump(include={"eligible_pairs", "strata", "drawn", "mode"})


class FuseRecord(StageRecord):
    label: ClassVar[str] = "fuse (查重融合)"
    stage: Literal["fuse"] = "fuse"
    inputs: list[FileRecord]
    # SPEC §4.5: drawn_total, duplicate_entities, joint_tasks, visits_saved, reduction_rate
    figures: dict[str, int | float]
    by_department: dict[str, dict[str, int]]
    outputs: list[FileRecord]

    def line(self) -> str:
        f = self.figures
        return (
            f"{f['drawn_total']:,} draws → {f['joint_tasks']:,} joint tasks ({f['duplicate_entities']:,} entities "
            f"drawn more than once); {f['visits_saved']:,} visits saved, "
            f"{figure_text('reduction_rate', f['reduction_rate'])}"
        )

    def report(self, run_dir: Path) -> list[Shown]:
        return [
            Table(
                f"{self.label}: the joint draw's figures, as the Shenzhen report gave them", figure_rows(self.figures)
            ),
            Table("draws, joint tasks and lead by department (部门)", self.by_department_rows()),
        ]

    def by_department_rows(self) -> list[dict[str, Any]]:
        return [{"department": d, **f} for d, f in self.by_department.items()]

    def artifacts(self, run_id: str) -> list[Artifact]:
        return [
            Artifact("table", "fusion-summary", f"Fusion (查重融合), run {run_id}", table=figure_rows(self.figures))
        ]

    def accounting(self) -> dict[str, Any]:
        return dict(self.figures)


class AssignRecord(StageRecord):
    label: ClassVar[str] = "assign (随机匹配执法人员)"
    stage: Literal["assign"] = "assign"
    inputs: list[FileRecord]
    joint_tasks: int
    assigned: int
    unassigned: int
    unassigned_by_reason: dict[str, int]
    inspectors_available: int
    inspectors_sent: int
    team_size: dict[str, int]  # team size → joint tasks
    from_department_pool: int
    shares_by_mode: dict[str, int]  # assign mode → department shares staffed or tried under it
    experts_sent: int  # experts and third parties on teams
    rebalancing_moves: int
    working_days: int
    capacity_per_inspector: int
    calendar: str
    previous_visits_in_warehouse: int
    avoid_pairs: int
    workload: dict[str, Any]  # spread of tasks per inspector, per (department, district) pool
    outputs: list[FileRecord]

    def line(self) -> str:
        w = self.workload
        return (
            f"{self.assigned:,} of {self.joint_tasks:,} joint tasks staffed and scheduled on {self.working_days} "
            f"working days; {self.unassigned:,} unassigned{self._why_unassigned()}; "
            f"{w['pools_spread_at_most_1']} of {w['pools_with_tasks']} pools with spread ≤ 1"
        )

    def report(self, run_dir: Path) -> list[Shown]:
        w = self.workload
        return [
            f"{self.label}: {self.assigned:,} of {self.joint_tasks:,} joint tasks staffed and scheduled on "
            f"{self.working_days} working days ({self.calendar}); unassigned {self.unassigned:,}"
            f"{self._why_unassigned()}; {self.inspectors_sent:,} of {self.inspectors_available:,} available "
            f"inspectors sent ({self.experts_sent:,} experts or third parties on teams); shares by assign mode "
            f"{self.shares_by_mode}; tasks per inspector {w['tasks_per_inspector']}; {w['pools_spread_at_most_1']} of "
            f"{w['pools_with_tasks']} pools with spread ≤ 1 (max {w['max_spread']}); busiest day {w['busiest_day']} "
            f"visits; {self.seconds:.1f} s"
        ]

    def _why_unassigned(self) -> str:
        return f" {self.unassigned_by_reason}" if self.unassigned_by_reason else ""

    def artifacts(self, run_id: str) -> list[Artifact]:
        return [
            Artifact(
                "table",
                "workload-by-pool",
                f"Tasks per inspector in each (department, district) pool, run {run_id}",
                table=self.workload["by_pool"],
            )
        ]

    def accounting(self) -> dict[str, Any]:
        return self.model_dump(include={"joint_tasks", "assigned", "unassigned", "unassigned_by_reason"})


class PublishRecord(StageRecord):
    label: ClassVar[str] = "publish (结果公示)"
    stage: Literal["publish"] = "publish"
    inputs: list[FileRecord]
    bundle: str
    warehouse_rows: dict[str, int]
    files: int
    documents: int
    seal: str
    seal_entry: int  # the audit log entry that holds the seal
    published: list[FileRecord]  # the files at the top of each part
    # the plan whose bundle's audit/directory.parquet was copied: written from the same directory files by the same
    # code (a quarterly plan drawn from the annual plan's directory); absent: written here
    directory_copied_from: str | None = None
    _manifest: dict[str, Any] = PrivateAttr(default_factory=dict)  # the manifest just written (not in stage.json)

    OMITTED_WHEN_NONE = ("directory_copied_from",)

    def with_manifest(self, manifest: dict[str, Any]) -> PublishRecord:
        self._manifest = manifest
        return self

    def line(self) -> str:
        return (
            f"{self.files} files and {self.documents} documents → {self.bundle}; seal (封存值) {self.seal}, "
            f"audit log entry {self.seal_entry}; warehouse rows {self.warehouse_rows}"
            + (
                f"; audit/directory.parquet copied from plan {self.directory_copied_from}'s bundle (the same directory)"
                if self.directory_copied_from
                else ""
            )
        )

    def report(self, run_dir: Path) -> list[Shown]:
        return [
            f"{self.label}: {self.files} files and {self.documents} documents → {self.bundle} "
            f"(public/, audit/, regulator/); open {self.bundle}/public/report.html",
            f"seal (封存值) [bold]{self.seal}[/bold] — announce it; "
            f"`jointdraw verify {self.bundle} --seal {self.seal}` rechecks the bundle against it",
        ]

    def artifacts(self, run_id: str) -> list[Artifact]:
        bundle = Path(self.bundle).resolve()
        found = [
            Artifact(
                "link",
                "published-bundle",
                f"The bundle of run {run_id} (seal {self.seal}); open public/report.html in it",
                link=bundle.as_uri(),
                link_text=f"published/{bundle.name}",
            )
        ]
        if self._manifest:
            found.append(
                Artifact(
                    "markdown",
                    "draw-certificate",
                    f"Draw certificate (抽取证书), run {run_id}",
                    markdown=draw_certificate(self._manifest, self.seal),
                )
            )
        return found


class ResultsPublishRecord(StageRecord):
    """The results flow's publish (一公开: SPEC §4.8): the results beside the draw, sealed."""

    label: ClassVar[str] = "publish results (检查结果公示)"
    stage: Literal["publish"] = "publish"
    bundle: str
    results: int
    warehouse_rows: int
    items_due: int
    answered: int
    outstanding: int
    answered_late: int
    outstanding_overdue: int
    problem_share: float
    by_code: dict[str, int]  # result code → results
    by_department: dict[str, dict[str, Any]]  # progress per department
    # issue 22: review, follow-up, corrections
    pending_review: int = 0
    returned: int = 0
    on_notice: int = 0
    follow_up_overdue: int = 0
    corrections: int = 0
    withdrawn: int = 0
    seal: str
    seal_entry: int

    def line(self) -> str:
        return (
            f"{self.answered:,} of {self.items_due:,} items answered, {self.outstanding:,} outstanding, "
            f"{self.answered_late:,} published late, {self.pending_review:,} pending review, {self.returned:,} "
            f"returned, {self.follow_up_overdue:,} follow-ups overdue → {self.bundle}; "
            f"results seal (封存值) {self.seal}"
        )

    def report(self, run_dir: Path) -> list[Shown]:
        return [
            Table(
                "progress by department (录入进度): items due, answered, outstanding, published late, "
                "overdue not entered",
                [{"department": d, **f} for d, f in self.by_department.items()],
            ),
            f"{self.answered:,} of {self.items_due:,} items answered, {self.outstanding:,} outstanding; problems "
            f"found in {self.problem_share:.1%}; {self.answered_late:,} published late; {self.pending_review:,} "
            f"pending review (待审核), {self.returned:,} returned (审核退回); {self.follow_up_overdue:,} follow-ups "
            f"overdue (逾期未完结处置); {self.corrections:,} corrections (更正); "
            f"open {self.bundle}/regulator/results/report.html",
            f"results seal (封存值) [bold]{self.seal}[/bold] — announce it; "
            f"`jointdraw verify {self.bundle} --results-seal {self.seal}` rechecks the results against it",
        ]


RECORD_TYPES: dict[str, type[StageRecord]] = {
    r.model_fields["stage"].default: r
    for r in (
        IngestRecord,
        ValidateRecord,
        MergeRecord,
        CommitRecord,
        DrawRecord,
        FuseRecord,
        AssignRecord,
        PublishRecord,
    )
}


# a results run's stages: 00_plan (the plan as the warehouse holds it: no record), then these
RESULTS_RECORD_TYPES: dict[str, type[StageRecord]] = {
    "ingest": IngestRecord,
    "validate": ValidateRecord,
    "publish": ResultsPublishRecord,
}


def read_record(path: Path, types: dict[str, type[StageRecord]] = RECORD_TYPES) -> StageRecord:
    """A stage.json, typed by its `stage` (`types`: RESULTS_RECORD_TYPES for a results run's)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return types[data["stage"]].model_validate(data)


def stage_accounting(records: dict[str, StageRecord]) -> dict[str, Any]:
    """Every stage's counts, as the manifest publishes them: read, accepted, quarantined by reason,
    excluded by reason, eligible, drawn, fused, assigned, unassigned."""
    return {stage: record.accounting() for stage, record in records.items() if stage != "publish"}
