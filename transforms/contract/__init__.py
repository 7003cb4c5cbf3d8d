"""The data contract (SPEC §4.2) in Great Expectations: the suites, the custom expectations that
call the project's identifier and date rules, running a validation, and its verdicts per row."""
