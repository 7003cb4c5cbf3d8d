"""Running the contract: Great Expectations validations of departments' registries, and their Data Docs.

An ephemeral GX context per stage run (no project folder, no network); progress bars off.
Each expectation carries its rule index in `meta`, so results map back to rules and their
quarantine reasons whatever order GX reports them in. A batch of typed rows is judged as
contract/frames.py prepares it (uniqueness on every row, the other rules once per distinct
value); its result is the one a validation of every row gives.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import shutil
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.execution_engine import PandasExecutionEngine, pandas_execution_engine
from great_expectations.expectations.registry import get_metric_provider
from great_expectations.validator.v1_validator import Validator as V1Validator

from jointdraw.transforms.contract.frames import DOCS_ROWS, ValidationFrames, with_statistics
from jointdraw.transforms.contract.suites import Rule, rule_description
from jointdraw.transforms.documents.datadocs import make_offline
from jointdraw.transforms.storage.bundle import move_into_place

_GX = threading.RLock()  # one GX context at work per process: contexts share module state (the project manager)
# GX sets this module's logger to INFO and says "Created temporary directory … for ephemeral docs site" for every
# validation (36 lines per run on the terminal): library chatter, not the run's news
logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
# GX fingerprints every batch frame under 1 GB for its batch markers with pandas' hash_pandas_object, which turns
# Arrow strings into Python objects first: 11.5 s for the 7.9M USCCs of the 8M city, more than the whole suite. Nothing
# here reads the fingerprint (the results are not kept in GX's store), so no frame is fingerprinted
pandas_execution_engine.HASH_THRESHOLD = 0


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
        self,
        name: str,
        frame: pd.DataFrame | ValidationFrames,
        rules: list[Rule],
        suite_name: str | None = None,
        batch: str | None = None,
    ) -> Any:
        """`check`, and the validation kept for Data Docs under `batch` (default `name`)."""
        suite, result = self.check(name, frame, rules, suite_name)
        self.done.append((suite, for_docs(result, batch or name)))
        return result

    def check(
        self, name: str, frame: pd.DataFrame | ValidationFrames, rules: list[Rule], suite_name: str | None = None
    ) -> Any:
        """Validates `frame` against the suite `suite_name` (default `name`: one suite per registry kind,
        so every department's file is a batch of the same suite) made of the rules' expectations, each
        described in Chinese with its standard and quarantine reason; returns the suite and the GX
        validation result (`.results`: one per expectation, each expectation's rule index in its
        meta, the failing rows' positions in `frame` as `unexpected_index_list`).

        A batch of typed rows (ValidationFrames) is judged in two GX validations, its per-row frame
        and its per-value frame (contract/frames.py), whose results are put back on the rows: the
        result is the one a validation of every row gives.

        The batch is validated directly, not through a validation definition and GX's results
        store: storing serialises every failing row (a file of a million bad rows took 2 min
        there). Data Docs get a copy with the first DOCS_ROWS failing rows of each expectation."""
        with _GX:
            expectations = []
            for i, rule in enumerate(rules):
                e = rule.expectation.copy(deep=True)
                e.meta = {**(e.meta or {}), "rule_index": i, "quarantine_reason": rule.reason}  # shown in Data Docs
                e.description = rule_description(rule)
                expectations.append(e)
            suite = gx.ExpectationSuite(name=suite_name or name, expectations=expectations)
            if isinstance(frame, pd.DataFrame):
                return suite, self._validate(name, frame, suite)
            return suite, self._rows_result(name, frame, suite)

    def _rows_result(self, name: str, frames: ValidationFrames, suite: Any) -> Any:
        """The suite's result on every row of a batch, from validations of its per-row frame (a column
        at a time) and one of its per-value frame (contract/frames.py), in the order one validation gives (by
        column, in the order the suite names them, then the suite's order), every result labelled
        with the batch (the per-row asset `name`)."""
        results, whole = [], None
        # each column of the per-row frame in a validation of its own: GX filters the whole frame again for
        # every metric of every expectation (its nulls left out, its failing rows), so a column beside others is
        # copied with theirs each time (AMR's 5.8M rows at 8M with 36,180 bad: the contract 3.9-4.3 s, 4.6 with
        # only the USCC apart, 6.1 before that and the query's removal below; a file of 371 rows 0.22-0.24 s
        # against 0.18-0.20)
        per_row = [
            (name if i == 0 else f"{name} ({column})", frames.per_row[[column]])
            for i, column in enumerate(frames.per_row.columns)
        ]
        for asset, data in (*per_row, (f"{name} (distinct values)", frames.per_value)):
            chosen = [e.copy(deep=True) for e in suite.expectations if e.column in data.columns]
            if not chosen:
                continue
            judged = data if data is frames.per_value else _what_gx_judges(data, chosen)
            done = self._validate(asset, judged, gx.ExpectationSuite(name=suite.name, expectations=chosen))
            results += [frames.row_result(r) for r in done.results]
            whole = whole or done
        batch_id = whole.results[0].expectation_config.kwargs.get("batch_id")
        for r in results:
            r.expectation_config = copy.deepcopy(r.expectation_config)
            r.expectation_config.kwargs["batch_id"] = batch_id
        first: dict[str, int] = {}
        for e in suite.expectations:
            first.setdefault(e.column, len(first))
        whole = copy.copy(whole)
        whole.results = sorted(
            results,
            key=lambda r: (first[r.expectation_config.kwargs["column"]], r.expectation_config.meta["rule_index"]),
        )
        return with_statistics(whole)

    def _validate(self, name: str, frame: pd.DataFrame, suite: Any) -> Any:
        """One GX validation of `frame` (a dataframe asset `name`) against `suite`."""
        source = self.context.data_sources.get("registries")
        batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(f"{name}-all")
        # positions, not id columns: GX finds id columns row by row (80 s for a million failing rows). The
        # validator is what ValidationDefinition.run uses, minus the store; it loads the frame once. No pandas
        # query of the failing rows: GX filters the whole frame again for it (1.2 s for AMR's 36,000 bad rows at
        # 8M). Nothing reads it and Data Docs do not show it; a file's share of a row rule's result writes it from
        # the positions (frames.py `file_share`)
        validator = V1Validator(
            batch_definition=batch_definition,
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
        )
        try:
            return validator.validate_expectation_suite(suite)
        finally:
            # the data source's engine keeps every batch it loaded (the frame, and GX's own copy of it) for the
            # life of the context, in reference cycles that only a full pass of the collector frees: AMR's frames
            # at 16M (1.3 GB) were still held when the merge began. Dropped as soon as the batch is judged.
            batches = source.get_execution_engine().batch_manager
            batches.reset_batch_cache()
            batches.batch_data_cache.clear()

    def validations(self) -> list[tuple[Any, Any]]:
        """(suite, result for the docs) of every validation run in this context (picklable: a
        task on a Dask worker returns them to the stage)."""
        return list(self.done)

    def add_validations(self, validations: list[tuple[Any, Any]]) -> None:
        """Adds validations made in other contexts (other tasks, other processes), so one Data
        Docs site shows every department's validation."""
        self.done.extend(validations)


@cache
def _leaves_nulls_out(metric: str) -> bool:
    """Whether GX's map metric `metric` judges only a column's non-null values (its condition's provider filters
    the nulls: uniqueness, the identifier rules; not the rules on nulls themselves)."""
    provider, _ = get_metric_provider(f"{metric}.condition", PandasExecutionEngine())
    return bool(getattr(provider, "filter_column_isnull", False))


def _what_gx_judges(data: pd.DataFrame, expectations: list[Any]) -> pd.DataFrame:
    """A per-row column (`data`, one column) as its `expectations` judge it: without its null rows when every one
    of them leaves nulls out, as GX would leave them out itself, for each metric again (a copy of the column each
    time: AMR's 5.8M USCCs at 8M with 3,618 missing, 0.19 s a copy, four per expectation). The rows keep their
    positions as index labels, which is how GX reports failing rows; the counts of a file's share are its own
    (frames.py `file_share`), so nothing GX reports changes. A column without a null, or with nothing else, is
    given as it is (GX copies nothing for the one, and the other is no batch to shorten)."""
    metrics = [getattr(type(e), "map_metric", None) for e in expectations]
    if not all(m and _leaves_nulls_out(m) for m in metrics):
        return data
    present = data[data.columns[0]].notna()
    return data if present.all() or not present.any() else data[present]


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


def build_data_docs(contract: Contract, site: Path) -> Path:
    """Static HTML of every suite and validation of this context under `site`, readable offline: one
    suite per registry kind (and one per kind's file inventory), each department's file a validation
    under its batch; the suites also as JSON in `site/suites/` (a change of the contract is a diff). Written
    beside and moved into place whole: `site` exists only once every page is there."""
    site = Path(site)
    building = site.with_name(f".{site.name}.building")
    shutil.rmtree(building, ignore_errors=True)  # a build that stopped half way
    building.mkdir(parents=True)
    _site_pages(contract, building)
    move_into_place(building, site)
    return site / "index.html"


def _site_pages(contract: Contract, site: Path) -> None:
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
