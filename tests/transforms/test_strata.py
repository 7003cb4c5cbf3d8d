from jointdraw.transforms.plan import Task
from jointdraw.transforms.strata import ratio_k, stratum_k


def _task(**kw):
    return Task(task_id="T", department="AMR", items=["I"], **kw)


def test_ratio_is_the_ceiling_per_class_in_exact_decimals():
    # 0.01 × 300 = 3 exactly (a float product would be 3.0000000000000004 → 4); 0.05 × 41 = 2.05 → 3; 0.5 × 0 = 0
    assert stratum_k(_task(ratio={"A": 0.01, "B": 0.05, "C": 0.5, "D": 1.0}), {"A": 300, "B": 41, "C": 0, "D": 7}) == {
        "A": 3,
        "B": 3,
        "C": 0,
        "D": 7,
    }


def test_count_by_largest_remainder_with_ties_in_class_order():
    # 10 over sizes 1:1:1 → quotas 3.33 each; floors 3,3,3 → the one left goes to A (tie, class order)
    assert stratum_k(_task(count=10), {"A": 5, "B": 5, "C": 5}) == {"A": 4, "B": 3, "C": 3, "D": 0}
    # 7 over 10:20:30:40 → quotas 0.7, 1.4, 2.1, 2.8 → floors 0,1,2,2 (5) → +1 to D (0.8) and A (0.7)
    assert stratum_k(_task(count=7), {"A": 10, "B": 20, "C": 30, "D": 40}) == {"A": 1, "B": 1, "C": 2, "D": 3}


def test_count_never_exceeds_the_stratum():
    assert stratum_k(_task(count=100), {"A": 2, "B": 3}) == {"A": 2, "B": 3, "C": 0, "D": 0}


def test_a_floor_raises_k_and_a_cap_lowers_it_never_above_n():
    # D: ceil(0.05 × 20) = 1, floor 3 → 3; C: ceil(0.5 × 100) = 50, cap 40 → 40; B: ceil(0.5 × 2) = 1, floor 5 but
    # only 2 objects → 2; A: a bare ratio, as before: ceil(0.01 × 300) = 3
    task = _task(
        ratio={
            "A": 0.01,
            "B": {"ratio": 0.5, "min_count": 5},
            "C": {"ratio": 0.5, "max_count": 40},
            "D": {"ratio": 0.05, "min_count": 3, "max_count": 10},
        }
    )
    assert stratum_k(task, {"A": 300, "B": 2, "C": 100, "D": 20}) == {"A": 3, "B": 2, "C": 40, "D": 3}
    # the same task in bigger strata: D's ceiling 0.05 × 1000 = 50 is capped at 10, B's 0.5 × 40 = 20 is above its floor
    assert stratum_k(task, {"A": 300, "B": 40, "C": 10, "D": 1000}) == {"A": 3, "B": 20, "C": 5, "D": 10}


def test_a_floor_draws_from_a_class_whose_ratio_is_zero_and_an_empty_stratum_draws_nothing():
    task = _task(ratio={"D": {"ratio": 0, "min_count": 2}})  # A–C not named: ratio 0
    assert stratum_k(task, {"A": 50, "D": 7}) == {"A": 0, "B": 0, "C": 0, "D": 2}
    assert stratum_k(task, {"A": 50}) == {"A": 0, "B": 0, "C": 0, "D": 0}


def test_the_rule_in_exact_decimals_with_a_cap_of_zero():
    # 0.07 × 100 = 7 exactly (float: 7.000000000000001 → 8); a cap of 0 draws nothing whatever the ratio
    assert ratio_k(100, 0.07) == 7 and ratio_k(100, 0.07, max_count=7) == 7 and ratio_k(100, 0.07, min_count=8) == 8
    assert ratio_k(100, 1.0, max_count=0) == 0 and ratio_k(0, 0.5, min_count=3) == 0
