import pytest

from jointdraw.transforms.seed import SeedError, resolve_seed, rfc3797_key


def test_rfc3797_key_string_from_the_spec_example():
    # numbers sorted ascending per source, each followed by '.', each source closed by '/'
    assert rfc3797_key(["9319", "2 5 12 8 10", "9 18 26 34 41 45"]) == "9319./2.5.8.10.12./9.18.26.34.41.45./"
    assert rfc3797_key(["07, 3"]) == "3.7./"  # leading zeros dropped, commas allowed


def test_bad_sources_are_refused_with_their_position():
    with pytest.raises(SeedError, match="seed source 2"):
        rfc3797_key(["1 2", "x 3"])


def test_seed_resolution_order_and_a_generated_seed_is_fresh():
    assert resolve_seed("given", ["1"]).origin == "given"
    assert resolve_seed(None, ["1"]).value == "1./"
    a, b = resolve_seed(None, None), resolve_seed(None, None)
    assert a.origin == "generated" and len(a.value) == 32 and a.value != b.value
