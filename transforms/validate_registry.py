"""Running the contract: one Great Expectations validation of one department's registry.

An ephemeral GX context per stage run (no project folder, no network); progress bars off.
Each expectation carries its rule index in `meta`, so results map back to rules and their
quarantine reasons whatever order GX reports them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd

from transforms.contract import Rule
from transforms.datadocs import make_offline

ROW_ID = ["row"]  # validation_frame's position column


@dataclass
class Contract:
    """A GX context with one pandas data source; suites are added per (kind, department)."""

    context: Any

    @classmethod
    def ephemeral(cls) -> Contract:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
        context.data_sources.add_pandas("registries")
        return cls(context)

    def validate(self, name: str, frame: pd.DataFrame, rules: list[Rule], row_id: list[str] = ROW_ID) -> Any:
        """Validates `frame` against a suite named `name` made of the rules' expectations;
        returns the GX validation result (`.results`: one per expectation, each failing row
        identified by the `row_id` columns, each expectation's rule index in its meta)."""
        source = self.context.data_sources.get("registries")
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}-all")
        suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for i, rule in enumerate(rules):
            e = rule.expectation.copy(deep=True)
            e.meta = {**(e.meta or {}), "rule_index": i, "quarantine_reason": rule.reason}  # shown in Data Docs
            suite.add_expectation(e)
        definition = self.context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": row_id, "return_unexpected_index_query": False}
        return definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)


def build_data_docs(contract: Contract, site: Path) -> Path:
    """Static HTML of every suite and validation of this context under `site`, readable offline."""
    site.mkdir(parents=True, exist_ok=True)
    contract.context.add_data_docs_site(site_name="jointdraw", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    contract.context.build_data_docs(site_names=["jointdraw"])
    make_offline(site)
    return site / "index.html"
