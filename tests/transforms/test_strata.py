from jointdraw.transforms.plan import Task
from jointdraw.transforms.strata import stratum_k


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
