"""Pass rules, Fisher exact p-values, Wilson intervals and multiple-testing adjustment.

Reference numbers were computed once with SciPy 1.17 and are hard-coded: SciPy is not a
dependency. `fisher_exact` takes the table [[k_after, n_after - k_after],
[k_before, n_before - k_before]]; "less" means the after row passes less often.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pytest

from prompttest.model.stats import (
    PassRule,
    RateChange,
    adjust,
    benjamini_hochberg,
    fisher_one_sided,
    holm,
    min_p_value,
    parse_pass_rule,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("counts", "p_less", "p_greater"),
    [
        # scipy.stats.fisher_exact([[5, 5], [10, 0]], alternative="less"/"greater")
        ((10, 10, 5, 10), 0.016253869969040248, 1.0),
        # scipy.stats.fisher_exact([[2, 8], [8, 2]], ...)
        ((8, 10, 2, 10), 0.011507068782610578, 0.9994533330446643),
        # scipy.stats.fisher_exact([[0, 5], [5, 0]], ...): 1 / C(10, 5)
        ((5, 5, 0, 5), 0.003968253968253969, 1.0),
        # scipy.stats.fisher_exact([[15, 5], [20, 0]], ...)
        ((20, 20, 15, 20), 0.023562023562023564, 1.0),
        # scipy.stats.fisher_exact([[38, 12], [45, 5]], ...)
        ((45, 50, 38, 50), 0.05418479204411025, 0.9844936302253963),
        # scipy.stats.fisher_exact([[3, 6], [7, 5]], ...): unequal n
        ((7, 12, 3, 9), 0.2449392712550607, 0.9436770659680876),
        # scipy.stats.fisher_exact([[9, 1], [2, 8]], ...)
        ((2, 10, 9, 10), 0.9999404620147654, 0.0027387473207906646),
        # scipy.stats.fisher_exact([[39, 1], [30, 10]], ...)
        ((30, 40, 39, 40), 0.9997793593536248, 0.003456703459878395),
        # scipy.stats.fisher_exact([[5, 5], [5, 5]], ...): equal rates
        ((5, 10, 5, 10), 0.6718591006516703, 0.6718591006516703),
        # scipy.stats.fisher_exact([[0, 1], [1, 0]], ...): one sample can never be significant
        ((1, 1, 0, 1), 0.5, 1.0),
    ],
)
def test_fisher_matches_scipy(counts: tuple[int, int, int, int], p_less: float, p_greater: float) -> None:
    assert fisher_one_sided(*counts, alternative="less") == pytest.approx(p_less, rel=1e-12)
    assert fisher_one_sided(*counts, alternative="greater") == pytest.approx(p_greater, rel=1e-12)


def test_fisher_is_exact_where_floats_would_round() -> None:
    # scipy.stats.fisher_exact([[0, 3], [3, 0]], alternative="less") gives 0.05000000000000001
    assert fisher_one_sided(3, 3, 0, 3, alternative="less") == 0.05


def test_fisher_with_an_empty_side_finds_nothing() -> None:
    assert fisher_one_sided(0, 0, 0, 5, alternative="less") == 1.0
    assert fisher_one_sided(4, 5, 0, 0, alternative="greater") == 1.0
    assert fisher_one_sided(0, 0, 0, 0, alternative="less") == 1.0


def test_fisher_handles_ten_thousand_samples_fast() -> None:
    start = time.perf_counter()
    # scipy.stats.fisher_exact([[8800, 1200], [9000, 1000]], alternative="less")
    assert fisher_one_sided(9000, 10_000, 8800, 10_000, alternative="less") == pytest.approx(
        3.400012111904207e-06, rel=1e-9
    )
    # scipy.stats.fisher_exact([[5000, 5000], [5000, 5000]], alternative="greater")
    assert fisher_one_sided(5000, 10_000, 5000, 10_000, alternative="greater") == pytest.approx(
        0.5056416842683511, rel=1e-9
    )
    assert fisher_one_sided(10_000, 10_000, 0, 10_000, alternative="less") == 0.0  # below 1e-308
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("counts", [(3, 2, 0, 1), (0, 1, -1, 1), (0, -1, 0, 1)])
def test_fisher_rejects_impossible_counts(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        fisher_one_sided(*counts, alternative="less")


def test_min_p_value_tells_when_no_drop_can_be_significant() -> None:
    assert min_p_value(3, 3) == 0.05  # 1 / C(6, 3): never < 0.05
    assert min_p_value(4, 4) == pytest.approx(1 / 70)
    assert min_p_value(5, 5) == fisher_one_sided(5, 5, 0, 5, alternative="less")


@pytest.mark.parametrize(
    ("k", "n", "confidence", "low", "high"),
    [
        # scipy.stats.binomtest(k, n).proportion_ci(confidence_level=c, method="wilson")
        (0, 10, 0.95, 0.0, 0.27753279986288926),
        (10, 10, 0.95, 0.7224672001371109, 1.0),
        (5, 10, 0.95, 0.236593090512564, 0.7634069094874361),
        (1, 3, 0.95, 0.06149194472039626, 0.7923403991979523),
        (80, 100, 0.95, 0.711170834406841, 0.8666330666689674),
        (8, 10, 0.90, 0.5407928056874879, 0.9314420122624679),
        (1, 1, 0.95, 0.20654931437723745, 1.0),
    ],
)
def test_wilson_matches_scipy(k: int, n: int, confidence: float, low: float, high: float) -> None:
    assert wilson_interval(k, n, confidence=confidence) == pytest.approx((low, high), rel=1e-9)


def test_wilson_with_no_samples_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_rejects_a_confidence_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=1.0)


def test_holm_by_hand() -> None:
    # sorted: 0.005*5 = 0.025, 0.01*4 = 0.04, 0.03*3 = 0.09, 0.04*2 = 0.08 -> 0.09 (monotone),
    # 0.2*1 = 0.2; back in input order
    assert holm([0.01, 0.04, 0.03, 0.005, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2])


def test_benjamini_hochberg_by_hand() -> None:
    # sorted: 0.005*5/1 = 0.025, 0.01*5/2 = 0.025, 0.03*5/3 = 0.05, 0.04*5/4 = 0.05, 0.2*5/5;
    # also scipy.stats.false_discovery_control([0.01, 0.04, 0.03, 0.005, 0.2], method="bh")
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.2]) == pytest.approx(
        [0.025, 0.05, 0.05, 0.025, 0.2]
    )


@pytest.mark.parametrize("adjuster", [holm, benjamini_hochberg])
def test_adjusted_p_values_are_capped_at_one_and_never_smaller(
    adjuster: Callable[[Sequence[float]], list[float]],
) -> None:
    raw = [0.6, 0.9, 0.02, 0.5]
    adjusted = adjuster(raw)
    assert all(a >= r for a, r in zip(adjusted, raw, strict=True))
    assert max(adjusted) <= 1.0
    assert adjuster([]) == []


@pytest.mark.parametrize(
    ("value", "k", "n", "passes"),
    [
        ("all", 5, 5, True),
        ("all", 4, 5, False),
        ("majority", 3, 5, True),
        ("majority", 2, 4, False),  # strictly more than half
        ("majority", 3, 4, True),
        ({"at_least": 3}, 3, 5, True),
        ({"at_least": 3}, 2, 5, False),
        ({"at_least": 6}, 5, 5, False),  # asks more than n: never passes
        ({"rate": 0.8}, 4, 5, True),
        ({"rate": 0.8}, 3, 5, False),
        ({"rate": 0.7}, 7, 10, True),  # 0.7 * 10 is 7.000000000000001 in floats
        ({"rate": 1}, 10, 10, True),
        ("all", 0, 0, False),  # nothing observed passes no rule
        ({"rate": 0.5}, 0, 0, False),
    ],
)
def test_pass_rules(value: object, k: int, n: int, passes: bool) -> None:
    assert parse_pass_rule(value).passes(k, n) is passes


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("most", "expected all | majority"),
        ({"rate": 0}, r"rate needs a number in \(0, 1\]"),
        ({"rate": 1.5}, r"rate needs a number in \(0, 1\]"),
        ({"rate": True}, "rate needs"),
        ({"at_least": 0}, "at_least needs a whole number >= 1"),
        ({"at_least": 2.5}, "at_least needs"),
        ({"at_least": 2, "rate": 0.5}, "expected all"),
        (None, "expected all"),
    ],
)
def test_bad_pass_rules_say_what_is_allowed(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_pass_rule(value)


def test_pass_rules_read_back_as_written() -> None:
    assert [str(parse_pass_rule(v)) for v in ("all", "majority", {"at_least": 3}, {"rate": 0.8})] == [
        "all",
        "majority",
        "at least 3",
        "rate >= 0.8",
    ]
    assert parse_pass_rule(PassRule()) == PassRule(kind="all")


def change(k_before: int, n_before: int, k_after: int, n_after: int) -> RateChange:
    return RateChange.compare(k_before=k_before, n_before=n_before, k_after=k_after, n_after=n_after)


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [
        ((10, 10, 5, 10), "drop"),  # p = 0.016
        ((10, 10, 8, 10), "inconclusive"),  # a drop is seen, p = 0.24
        ((2, 10, 9, 10), "rise"),  # p = 0.0027
        ((5, 10, 10, 20), "same"),  # equal rates, different n
        ((3, 3, 0, 3), "inconclusive"),  # p = 0.05 is not < 0.05
        ((1, 1, 0, 1), "inconclusive"),  # n = 1 is the core's verdict table, not this
        ((0, 0, 3, 5), "same"),  # an empty side has no rate to compare
    ],
)
def test_classify(counts: tuple[int, int, int, int], verdict: str) -> None:
    assert change(*counts).classify(0.05) == verdict


def test_classify_alpha_is_settable() -> None:
    assert change(10, 10, 8, 10).classify(0.3) == "drop"
    assert change(10, 10, 5, 10).classify(0.01) == "inconclusive"


def test_direction_and_p_value_follow_what_was_seen() -> None:
    assert (change(1, 1, 0, 1).direction, change(1, 1, 0, 1).p_value) == ("drop", 0.5)
    assert change(0, 2, 1, 2).direction == "rise"
    assert change(5, 10, 5, 10).p_value == 1.0


def test_adjust_holm_over_all_keys_turns_a_lone_drop_inconclusive() -> None:
    drop = change(10, 10, 5, 10)  # p_drop = 0.0163
    quiet = [change(10, 10, 10, 10)] * 4
    alone = adjust([drop], "holm")[0]
    assert alone.classify(0.05) == "drop"
    crowd = adjust([drop, *quiet], "holm")
    assert crowd[0].p_drop == pytest.approx(5 * 0.016253869969040248)  # unchanged keys count in m
    assert crowd[0].classify(0.05) == "inconclusive"
    assert [c.classify(0.05) for c in crowd[1:]] == ["same"] * 4


def test_adjust_keeps_drops_and_rises_in_separate_families() -> None:
    drop, rise = change(10, 10, 5, 10), change(2, 10, 9, 10)
    adjusted = adjust([drop, rise], "holm")
    # Holm over [0.0163, p_drop(rise) ~ 1.0]: the rise does not spend the drop's budget
    assert adjusted[0].p_drop == pytest.approx(2 * 0.016253869969040248)
    assert adjusted[1].p_rise == pytest.approx(2 * 0.0027387473207906646)
    assert [c.classify(0.05) for c in adjusted] == ["drop", "rise"]


def test_adjust_bh_is_less_strict_than_holm() -> None:
    # raw p_drop 0.0163 and 0.0236, plus two unchanged keys (p_drop = 1.0)
    changes = [change(10, 10, 5, 10), change(20, 20, 15, 20), *[change(10, 10, 10, 10)] * 2]
    holm_p = [c.p_drop for c in adjust(changes, "holm")]
    bh_p = [c.p_drop for c in adjust(changes, "bh")]
    assert all(b <= h for b, h in zip(bh_p, holm_p, strict=True))
    # Holm: 4 * 0.0163 = 0.065; BH: min(4 * 0.0163, 4/2 * 0.0236) = 0.047 for both
    assert [c.classify(0.05) for c in adjust(changes, "holm")] == ["inconclusive"] * 2 + ["same"] * 2
    assert [c.classify(0.05) for c in adjust(changes, "bh")] == ["drop"] * 2 + ["same"] * 2


def test_adjust_rejects_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="'holm' or 'bh'"):
        adjust([], "bonferroni")  # type: ignore[arg-type]
