"""Running the contract: one Great Expectations validation of one department's registry.

An ephemeral GX context per stage run (no project folder, no network); progress bars off.
Each expectation carries its rule index in `meta`, so results map back to rules and their
quarantine reasons whatever order GX reports them in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
import pandas as pd

from transforms.contract import Rule
from transforms.datadocs import make_offline

ROW_ID = ["row"]  # validation_frame's position column
_GX = threading.RLock()  # one GX context at work per process: contexts share module state (the project manager)


@dataclass
class Contract:
    """A GX context with one pandas data source; suites are added per (kind, department)."""

    context: Any

    @classmethod
    def ephemeral(cls) -> Contract:
        with _GX:
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = {"globally": False, "metric_calculations": False}
            context.data_sources.add_pandas("registries")
        return cls(context)

    def validate(self, name: str, frame: pd.DataFrame, rules: list[Rule], row_id: list[str] = ROW_ID) -> Any:
        """Validates `frame` against a suite named `name` made of the rules' expectations;
        returns the GX validation result (`.results`: one per expectation, each failing row
        identified by the `row_id` columns, each expectation's rule index in its meta)."""
        with _GX:
            return self._validate(name, frame, rules, row_id)

    def _validate(self, name: str, frame: pd.DataFrame, rules: list[Rule], row_id: list[str]) -> Any:
        source = self.context.data_sources.get("registries")
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}-all")
        expectations = []
        for i, rule in enumerate(rules):
            e = rule.expectation.copy(deep=True)
            e.meta = {**(e.meta or {}), "rule_index": i, "quarantine_reason": rule.reason}  # shown in Data Docs
            expectations.append(e)
        suite = self.context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))  # one store write, not one per rule
        definition = self.context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": row_id, "return_unexpected_index_query": False}
        return definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)

    def validations(self) -> list[tuple[Any, Any]]:
        """(suite, validation result) of every validation run in this context (picklable: a task
        on a Dask worker returns them to the stage)."""
        store = self.context.validation_results_store
        with _GX:
            return [(self.context.suites.get(key.expectation_suite_identifier.name), store.get(key)) for key in store.list_keys()]

    def add_validations(self, validations: list[tuple[Any, Any]]) -> None:
        """Adds (suite, validation result) pairs made in other contexts (other tasks, other
        processes) to this one, so one Data Docs site shows every department's validation."""
        with _GX:
            for suite, result in validations:
                self.context.suites.add(suite)
                suite_id = ExpectationSuiteIdentifier(name=suite.name)
                key = ValidationResultIdentifier(batch_identifier="whole", expectation_suite_identifier=suite_id,
                                                 run_id=result.meta["run_id"])
                self.context.validation_results_store.store_validation_results(
                    suite_validation_result=result, suite_validation_result_identifier=key, expectation_suite_identifier=suite_id)


def build_data_docs(contract: Contract, site: Path) -> Path:
    """Static HTML of every suite and validation of this context under `site`, readable offline."""
    site.mkdir(parents=True, exist_ok=True)
    contract.context.add_data_docs_site(site_name="jointdraw", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    with _GX:
        contract.context.build_data_docs(site_names=["jointdraw"])
    make_offline(site)
    return site / "index.html"
