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

RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["source_line"],
                 "return_unexpected_index_query": False}


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

    def validate(self, name: str, frame: pd.DataFrame, expectations: list[Any], meta: list[dict] | None = None) -> Any:
        """Validates `frame` against a suite named `name` made of `expectations`; returns the
        GX validation result (its `.results` hold one result per expectation)."""
        source = self.context.data_sources.get("registries")
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}-all")
        suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for i, e in enumerate(expectations):
            e = e.copy(deep=True)
            e.meta = {**(e.meta or {}), **(meta[i] if meta else {})}
            suite.add_expectation(e)
        definition = self.context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        return definition.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)


def rule_meta(rules: list[Rule]) -> list[dict]:
    """Meta for each rule's expectation: its index and quarantine reason (shown in Data Docs)."""
    return [{"rule_index": i, "quarantine_reason": r.reason} for i, r in enumerate(rules)]


def build_data_docs(contract: Contract, site: Path) -> Path:
    """Static HTML of every suite and validation of this context under `site`, readable offline."""
    site.mkdir(parents=True, exist_ok=True)
    contract.context.add_data_docs_site(site_name="jointdraw", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    contract.context.build_data_docs(site_names=["jointdraw"])
    make_offline(site)
    return site / "index.html"
