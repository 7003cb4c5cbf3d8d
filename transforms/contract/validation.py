"""Running the contract: one Great Expectations validation of one department's registry.

An ephemeral GX context per stage run (no project folder, no network); progress bars off.
Each expectation carries its rule index in `meta`, so results map back to rules and their
quarantine reasons whatever order GX reports them in.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.validator.v1_validator import Validator as V1Validator

from jointdraw.transforms.contract.suites import Rule, rule_description
from jointdraw.transforms.documents.datadocs import make_offline

_GX = threading.RLock()  # one GX context at work per process: contexts share module state (the project manager)
# GX sets this module's logger to INFO and says "Created temporary directory … for ephemeral docs site" for every
# validation (36 lines per run on the terminal): library chatter, not the run's news
logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)


DOCS_ROWS = 20  # failing rows kept per expectation in the copy of a result shown in Data Docs
ROW_LISTS = (
    "unexpected_index_list",
    "unexpected_list",
    "partial_unexpected_list",
    "partial_unexpected_index_list",
    "partial_unexpected_counts",
)


@dataclass
class Contract:
    """A GX context with one pandas data source; `validate` runs a suite on a frame. Every
    validation is kept as (suite, result for the docs) for one Data Docs site."""

    context: Any
    done: list[tuple[Any, Any]] = field(default_factory=list)

    @classmethod
    def ephemeral(cls) -> Contract:
        with _GX:
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = {"globally": False, "metric_calculations": False}
            context.data_sources.add_pandas("registries")
        return cls(context)

    def validate(
        self, name: str, frame: pd.DataFrame, rules: list[Rule], suite_name: str | None = None, batch: str | None = None
    ) -> Any:
        """`check`, and the validation kept for Data Docs under `batch` (default `name`)."""
        suite, result = self.check(name, frame, rules, suite_name)
        self.done.append((suite, for_docs(result, batch or name)))
        return result

    def check(self, name: str, frame: pd.DataFrame, rules: list[Rule], suite_name: str | None = None) -> Any:
        """Validates `frame` against the suite `suite_name` (default `name`: one suite per registry kind,
        so every department's file is a batch of the same suite) made of the rules' expectations, each
        described in Chinese with its standard and quarantine reason; returns the suite and the GX
        validation result (`.results`: one per expectation, each expectation's rule index in its
        meta, the failing rows' positions in `frame` as `unexpected_index_list`).

        The batch is validated directly, not through a validation definition and GX's results
        store: storing serialises every failing row (a file of a million bad rows took 2 min
        there). Data Docs get a copy with the first DOCS_ROWS failing rows of each expectation."""
        with _GX:
            source = self.context.data_sources.get("registries")
            batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(f"{name}-all")
            expectations = []
            for i, rule in enumerate(rules):
                e = rule.expectation.copy(deep=True)
                e.meta = {**(e.meta or {}), "rule_index": i, "quarantine_reason": rule.reason}  # shown in Data Docs
                e.description = rule_description(rule)
                expectations.append(e)
            suite = gx.ExpectationSuite(name=suite_name or name, expectations=expectations)
            # positions, not id columns: GX finds id columns row by row (80 s for a million failing rows). The
            # validator is what ValidationDefinition.run uses, minus the store; it loads (and fingerprints) the frame
            # once
            validator = V1Validator(
                batch_definition=batch_definition,
                batch_parameters={"dataframe": frame},
                result_format={"result_format": "COMPLETE"},
            )
            return suite, validator.validate_expectation_suite(suite)

    def validations(self) -> list[tuple[Any, Any]]:
        """(suite, result for the docs) of every validation run in this context (picklable: a
        task on a Dask worker returns them to the stage)."""
        return list(self.done)

    def add_validations(self, validations: list[tuple[Any, Any]]) -> None:
        """Adds validations made in other contexts (other tasks, other processes), so one Data
        Docs site shows every department's validation."""
        self.done.extend(validations)


def for_docs(result: Any, batch: str) -> Any:
    """A copy of `result` with at most DOCS_ROWS failing rows per expectation, and a run id named
    after its batch (the department's file)."""
    docs = copy.copy(result)
    docs.results = []
    for r in result.results:
        pruned = copy.copy(r)
        pruned.result = {
            k: (v[:DOCS_ROWS] if k in ROW_LISTS and isinstance(v, list) else v) for k, v in r.result.items()
        }
        docs.results.append(pruned)
    docs.meta = {
        **(result.meta or {}),
        "batch": batch,
        "run_id": RunIdentifier(run_name=batch, run_time=dt.datetime.now(dt.UTC)),
    }
    return docs


def result_slice(result: Any, start: int, stop: int, frame: pd.DataFrame) -> Any:
    """The share of one file in a GX result over several files' rows (`frame` rows start…stop-1): each
    expectation's failing rows renumbered from the file's first row, its counts and percentages and
    success for the file alone, and the suite's statistics. Row rules only (every rule of a registry
    suite is one): a file's share is what validating it alone gives, but that its lists of failing
    values hold the first DOCS_ROWS (the verdicts read positions; the docs show no more)."""
    part = copy.copy(result)
    part.results = []
    for r in result.results:
        found = r.result.get("unexpected_index_list") or []
        keep = [j for j, i in enumerate(found) if start <= i < stop]
        column = r.expectation_config.kwargs.get("column")
        n = stop - start
        missing = int(frame[column].iloc[start:stop].isna().sum()) if column in frame.columns else 0
        share = {**r.result, "element_count": n, "unexpected_count": len(keep)}
        share["unexpected_index_list"] = [found[j] - start for j in keep]
        # the file's failing values, read from the frame: the first DOCS_ROWS, as many as Data Docs show
        values = frame[column].iloc[[found[j] for j in keep[:DOCS_ROWS]]].tolist() if column in frame.columns else []
        for key in ("unexpected_list", "partial_unexpected_list"):
            if key in r.result:
                share[key] = values
        if "partial_unexpected_index_list" in r.result:
            share["partial_unexpected_index_list"] = share["unexpected_index_list"][:DOCS_ROWS]
        if "partial_unexpected_counts" in r.result:
            share["partial_unexpected_counts"] = [{"value": v, "count": c} for v, c in Counter(values).most_common()]
        present = n - missing if "missing_count" in r.result else n
        if "missing_count" in r.result:
            share["missing_count"], share["missing_percent"] = missing, missing / n * 100 if n else None
        for key, base in (
            ("unexpected_percent", present),
            ("unexpected_percent_nonmissing", present),
            ("unexpected_percent_total", n),
        ):
            if key in r.result:
                share[key] = len(keep) / base * 100 if base else None  # as GX computes it
        one = copy.copy(r)
        one.result, one.success = share, not keep
        part.results.append(one)
    passed = sum(1 for r in part.results if r.success)
    part.statistics = {
        **(result.statistics or {}),
        "evaluated_expectations": len(part.results),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(part.results) - passed,
        "success_percent": 100 * passed / len(part.results) if part.results else None,
    }
    part.success = passed == len(part.results)
    return part


def build_data_docs(contract: Contract, site: Path) -> Path:
    """Static HTML of every suite and validation of this context under `site`, readable offline: one
    suite per registry kind (and one per kind's file inventory), each department's file a validation
    under its batch; the suites also as JSON in `site/suites/` (a change of the contract is a diff)."""
    site.mkdir(parents=True, exist_ok=True)
    contract.context.add_data_docs_site(
        site_name="jointdraw",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    suites = {suite.name: suite for suite, _ in contract.done}  # one per kind, whichever file ran it first
    with _GX:
        for suite in suites.values():
            contract.context.suites.add(suite)
        for suite, result in contract.done:
            suite_id = ExpectationSuiteIdentifier(name=suite.name)
            key = ValidationResultIdentifier(
                batch_identifier=result.meta.get("batch", "whole"),
                expectation_suite_identifier=suite_id,
                run_id=result.meta["run_id"],
            )
            contract.context.validation_results_store.store_validation_results(
                suite_validation_result=result,
                suite_validation_result_identifier=key,
                expectation_suite_identifier=suite_id,
            )
        contract.context.build_data_docs(site_names=["jointdraw"])
    make_offline(site)
    (site / "suites").mkdir(exist_ok=True)
    for name, suite in sorted(suites.items()):
        document = {k: v for k, v in suite.to_json_dict().items() if k not in ("id", "notes")}
        for e in document.get("expectations", []):
            e.pop("id", None)
        (site / "suites" / f"{name}.json").write_text(
            json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return site / "index.html"
