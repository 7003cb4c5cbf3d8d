"""Running the contract: one Great Expectations validation of one department's registry.

An ephemeral GX context per stage run (no project folder, no network); progress bars off.
Each expectation carries its rule index in `meta`, so results map back to rules and their
quarantine reasons whatever order GX reports them in.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
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

from transforms.contract import Rule
from transforms.datadocs import make_offline

_GX = threading.RLock()  # one GX context at work per process: contexts share module state (the project manager)


DOCS_ROWS = 20  # failing rows kept per expectation in the copy of a result shown in Data Docs
ROW_LISTS = ("unexpected_index_list", "unexpected_list", "partial_unexpected_list", "partial_unexpected_index_list",
             "partial_unexpected_counts")


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

    def validate(self, name: str, frame: pd.DataFrame, rules: list[Rule]) -> Any:
        """Validates `frame` against a suite named `name` made of the rules' expectations;
        returns the GX validation result (`.results`: one per expectation, each expectation's
        rule index in its meta, the failing rows' positions in `frame` as `unexpected_index_list`).

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
                expectations.append(e)
            suite = gx.ExpectationSuite(name=name, expectations=expectations)
            # positions, not id columns: GX finds id columns row by row (80 s for a million failing rows). The
            # validator is what ValidationDefinition.run uses, minus the store; it loads (and fingerprints) the frame once
            validator = V1Validator(batch_definition=batch_definition, batch_parameters={"dataframe": frame},
                                    result_format={"result_format": "COMPLETE"})
            result = validator.validate_expectation_suite(suite)
            self.done.append((suite, _for_docs(result, name)))
            return result

    def validations(self) -> list[tuple[Any, Any]]:
        """(suite, result for the docs) of every validation run in this context (picklable: a
        task on a Dask worker returns them to the stage)."""
        return list(self.done)

    def add_validations(self, validations: list[tuple[Any, Any]]) -> None:
        """Adds validations made in other contexts (other tasks, other processes), so one Data
        Docs site shows every department's validation."""
        self.done.extend(validations)


def _for_docs(result: Any, name: str) -> Any:
    """A copy of `result` with at most DOCS_ROWS failing rows per expectation, and a run id."""
    docs = copy.copy(result)
    docs.results = []
    for r in result.results:
        pruned = copy.copy(r)
        pruned.result = {k: (v[:DOCS_ROWS] if k in ROW_LISTS and isinstance(v, list) else v) for k, v in r.result.items()}
        docs.results.append(pruned)
    docs.meta = {**(result.meta or {}), "run_id": RunIdentifier(run_name=name, run_time=dt.datetime.now(dt.UTC))}
    return docs


def build_data_docs(contract: Contract, site: Path) -> Path:
    """Static HTML of every suite and validation of this context under `site`, readable offline."""
    site.mkdir(parents=True, exist_ok=True)
    contract.context.add_data_docs_site(site_name="jointdraw", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    with _GX:
        for suite, result in contract.done:
            contract.context.suites.add(suite)
            suite_id = ExpectationSuiteIdentifier(name=suite.name)
            key = ValidationResultIdentifier(batch_identifier="whole", expectation_suite_identifier=suite_id, run_id=result.meta["run_id"])
            contract.context.validation_results_store.store_validation_results(
                suite_validation_result=result, suite_validation_result_identifier=key, expectation_suite_identifier=suite_id)
        contract.context.build_data_docs(site_names=["jointdraw"])
    make_offline(site)
    return site / "index.html"
