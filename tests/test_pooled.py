"""Suites' pooled tests, adaptive repeats and the run's procedure (issue 21's statistical core).

Exact values are checked against independent calculations: brute-force enumeration with
fractions for tiny strata, `stats.fisher_one_sided` for one stratum, and the textbook
example of R's `mantelhaen.test` (Agresti's penicillin and rabbits data, whose printed results
are quoted in R's documentation). The procedure is checked against a brute-force closed test.
"""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest

from prompttest.model.familywise import RunTests, SuiteTests, initial_key_level
from prompttest.model.pooled import (
    PooledChange,
    Stratum,
    cmh_statistic,
    detectable_drop,
    detectable_pooled_drop,
    drop_power,
    drop_threshold,
    null_distribution,
    pooled_drop_power,
    stratified_p,
)
from prompttest.model.sequential import SequentialPlan, next_step, sequential_p
from prompttest.model.stats import fisher_one_sided, holm

# Agresti (1990), penicillin and rabbits: (cured, died) with the injection at once, then delayed
# 1.5 h, at five penicillin levels. "after" = at once, "before" = delayed.
RABBITS = [((0, 6), (0, 5)), ((3, 3), (0, 6)), ((6, 0), (2, 4)), ((5, 1), (6, 0)), ((2, 0), (5, 0))]
RABBIT_STRATA = [Stratum(dc, dc + dd, nc, nc + nd) for (nc, nd), (dc, dd) in RABBITS]


def exact_law(s: Stratum) -> dict[int, Fraction]:
    """A stratum's hypergeometric law given its margins, in fractions."""
    total, passes, draws = s.n_before + s.n_after, s.k_before + s.k_after, s.n_after
    return {x: Fraction(math.comb(passes, x) * math.comb(total - passes, draws - x), math.comb(total, draws))
            for x in range(draws + 1) if x <= passes and draws - x <= total - passes}


def brute_force(strata: list[Stratum], alternative: str) -> Fraction:
    """P(T <= t) or P(T >= t) by enumerating every table with the strata's margins."""
    laws = [exact_law(s) for s in strata]
    observed = sum(s.k_after for s in strata)
    tail = Fraction(0)
    for xs in itertools.product(*(law.items() for law in laws)):
        value = sum(x for x, _ in xs)
        if (value <= observed) if alternative == "less" else (value >= observed):
            tail += math.prod((p for _, p in xs), start=Fraction(1))
    return tail


def random_strata(rng: random.Random, count: int, most: int) -> list[Stratum]:
    out = []
    for _ in range(count):
        n_b, n_a = rng.randint(0, most), rng.randint(0, most)
        out.append(Stratum(rng.randint(0, n_b), n_b, rng.randint(0, n_a), n_a))
    return out


# --------------------------------------------------------------------------- the pooled test


@pytest.mark.parametrize("seed", range(12))
def test_stratified_p_matches_brute_force_enumeration(seed: int) -> None:
    strata = random_strata(random.Random(seed), count=random.Random(seed).randint(1, 4), most=6)
    for alternative in ("less", "greater"):
        exact = brute_force(strata, alternative)
        assert stratified_p(strata, alternative=alternative) == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize(
    "counts", [(10, 10, 5, 10), (8, 10, 2, 10), (7, 12, 3, 9), (30, 40, 39, 40), (1, 1, 0, 1)]
)
def test_one_stratum_is_fisher(counts: tuple[int, int, int, int]) -> None:
    for alternative in ("less", "greater"):
        assert stratified_p([Stratum(*counts)], alternative=alternative) == pytest.approx(
            fisher_one_sided(*counts, alternative=alternative), rel=1e-12
        )


def test_textbook_rabbits_example() -> None:
    # R: mantelhaen.test(Rabbits) -> "Mantel-Haenszel X-squared = 3.9286", p = 0.047;
    # mantelhaen.test(Rabbits, exact = TRUE, alternative = "greater") -> p = 0.020;
    # exact two-sided (R's default "minlike": the outcomes no likelier than the observed) -> 0.040.
    assert cmh_statistic(RABBIT_STRATA) == pytest.approx(3.9286, abs=5e-5)
    greater = stratified_p(RABBIT_STRATA, alternative="greater")
    assert round(greater, 3) == 0.020
    assert greater == pytest.approx(float(brute_force(RABBIT_STRATA, "greater")), rel=1e-12)
    low, pmf = null_distribution(RABBIT_STRATA)
    observed = pmf[sum(s.k_after for s in RABBIT_STRATA) - low]
    assert round(sum(p for p in pmf if p <= observed * (1 + 1e-7)), 3) == 0.040
    assert math.fsum(pmf) == pytest.approx(1.0, abs=1e-12)


def test_pooling_is_stratified_not_a_sum_of_tables() -> None:
    # Simpson's trap: each key passes as often as before, but the run sampled the good key more.
    strata = [Stratum(9, 10, 72, 80), Stratum(1, 10, 1, 10)]
    change = PooledChange.compare(strata)
    assert change.difference == pytest.approx(0.0)
    assert change.p_drop > 0.4 and change.p_rise > 0.4
    naive = fisher_one_sided(10, 20, 73, 90, alternative="greater")  # 10/20 -> 73/90 in one table
    assert naive < 0.05


def test_p_values_move_the_right_way() -> None:
    base = [Stratum(16, 20, 14, 20), Stratum(15, 20, 12, 20), Stratum(18, 20, 17, 20)]
    p = stratified_p(base, alternative="less")
    fewer = [Stratum(16, 20, 13, 20), *base[1:]]
    assert stratified_p(fewer, alternative="less") < p
    better_before = [Stratum(17, 20, 14, 20), *base[1:]]
    assert stratified_p(better_before, alternative="less") < p
    # the two tails overlap in the observed value
    assert p + stratified_p(base, alternative="greater") >= 1.0
    # more strata with the same drop: more evidence
    assert stratified_p(base * 3, alternative="less") < p


def test_empty_and_degenerate_strata_carry_no_information() -> None:
    assert stratified_p([], alternative="less") == 1.0
    assert stratified_p([Stratum(0, 0, 3, 5), Stratum(4, 5, 0, 0)], alternative="greater") == 1.0
    all_pass, all_fail = Stratum(20, 20, 20, 20), Stratum(0, 20, 0, 20)
    assert stratified_p([all_pass, all_fail], alternative="less") == 1.0
    mixed = Stratum(16, 20, 10, 20)
    assert stratified_p([mixed, all_pass, all_fail], alternative="less") == pytest.approx(
        fisher_one_sided(16, 20, 10, 20, alternative="less"), rel=1e-12
    )
    change = PooledChange.compare([Stratum(0, 0, 3, 5)])
    assert (change.strata, change.rate_before, change.interval, change.p_drop) == (0, None, None, 1.0)
    change = PooledChange.compare([all_pass])
    assert (change.strata, change.difference, change.interval) == (1, 0.0, (0.0, 0.0))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        Stratum(3, 2, 0, 1)


def test_pooled_rates_and_interval() -> None:
    strata = [Stratum(16, 20, 12, 20), Stratum(14, 20, 13, 20), Stratum(18, 20, 15, 20)]
    change = PooledChange.compare(strata)
    assert change.rate_before == pytest.approx(48 / 60) and change.rate_after == pytest.approx(40 / 60)
    assert change.interval is not None and change.interval[0] < change.difference < change.interval[1]
    # One stratum, equal n: Sato's variance is the binomial one, p1(1-p1)/n + p2(1-p2)/n.
    one = PooledChange.compare([Stratum(30, 50, 20, 50)])
    half = 1.959963984540054 * math.sqrt(0.6 * 0.4 / 50 + 0.4 * 0.6 / 50)
    assert one.interval == pytest.approx((-0.2 - half, -0.2 + half))
    # weights n_b n_a / N: the stratum sampled 40 times after weighs 10·40/50 = 8, the other 5
    weighted = PooledChange.compare([Stratum(9, 10, 36, 40), Stratum(5, 10, 2, 10)])
    assert weighted.rate_after == pytest.approx((8 * 0.9 + 5 * 0.2) / 13)


def test_many_strata_match_a_convolution_in_fractions() -> None:
    # 40 strata: too many to enumerate, so convolve their exact laws in fractions instead.
    strata = random_strata(random.Random(3), count=40, most=9)
    law = {0: Fraction(1)}
    for st in strata:
        merged: dict[int, Fraction] = {}
        for a, pa in law.items():
            for x, px in exact_law(st).items():
                merged[a + x] = merged.get(a + x, Fraction(0)) + pa * px
        law = merged
    t = sum(st.k_after for st in strata)
    lower = sum((p for v, p in law.items() if v <= t), Fraction(0))
    upper = sum((p for v, p in law.items() if v >= t), Fraction(0))
    assert stratified_p(strata, alternative="less") == pytest.approx(float(lower), rel=1e-12)
    assert stratified_p(strata, alternative="greater") == pytest.approx(float(upper), rel=1e-12)
    low, pmf = null_distribution(strata)
    assert pmf[t - low] == pytest.approx(float(law[t]), rel=1e-12)


def test_pooled_test_is_fast_enough_for_a_large_suite() -> None:
    rng = random.Random(7)
    strata = [Stratum(rng.randint(10, 20), 20, rng.randint(8, 20), 20) for _ in range(300)]
    for alternative in ("less", "greater"):
        assert 0.0 <= stratified_p(strata, alternative=alternative) <= 1.0


# --------------------------------------------------------------------------- what n can see


def test_drop_power_matches_the_exact_table_of_bench_stats() -> None:
    # docs/statistics.md, exact column: 0.8 -> 0.5 at n = 10 and 20, 0.8 -> 0.6 at n = 20
    assert drop_power(10, 10, 0.8, 0.5, 0.05) == pytest.approx(0.254, abs=5e-4)
    assert drop_power(20, 20, 0.8, 0.5, 0.05) == pytest.approx(0.531, abs=5e-4)
    assert drop_power(20, 20, 0.8, 0.6, 0.05) == pytest.approx(0.290, abs=5e-4)
    assert drop_power(20, 20, 0.8, 0.8, 0.05) == pytest.approx(0.023, abs=5e-4)  # the false alarm rate


def test_drop_threshold_is_the_edge_of_significance() -> None:
    t = drop_threshold(16, 20, 20, 0.05)
    assert fisher_one_sided(16, 20, t, 20, alternative="less") < 0.05
    assert fisher_one_sided(16, 20, t + 1, 20, alternative="less") >= 0.05
    assert drop_threshold(3, 3, 3, 0.05) == -1  # 1/C(6,3) = 0.05 is never below 0.05


def test_detectable_drop_reaches_its_power_and_moves_the_right_way() -> None:
    drop = detectable_drop(20, 20, 0.8, 0.05)
    assert drop is not None and 0.4 < drop < 0.45
    assert drop_power(20, 20, 0.8, 0.8 - drop, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert drop_power(20, 20, 0.8, 0.8 - drop + 0.01, 0.05) < 0.8
    assert detectable_drop(20, 80, 0.8, 0.05) < drop  # more samples after: smaller drops
    assert detectable_drop(20, 20, 0.8, 0.05 / 60) > drop  # a smaller level: larger drops
    assert detectable_drop(3, 3, 0.8, 0.05) is None  # nothing is ever significant
    with pytest.raises(ValueError):
        detectable_drop(20, 20, 0.8, 0.0)


def test_pooled_detectable_drop() -> None:
    # one stratum: the approximation stays close to the exact Fisher power
    one = detectable_pooled_drop([(20, 20)], 0.8, 0.05)
    assert one == pytest.approx(detectable_drop(20, 20, 0.8, 0.05), abs=0.01)
    suite = detectable_pooled_drop([(20, 20)] * 30, 0.8, 0.025)
    assert suite is not None and suite < 0.1
    assert pooled_drop_power([(20, 20)] * 30, 0.8, 0.8 - suite, 0.025) == pytest.approx(0.8, abs=1e-6)
    assert detectable_pooled_drop([(20, 40)] * 30, 0.8, 0.025) < suite
    assert pooled_drop_power([(0, 20)], 0.8, 0.5, 0.05) == 0.0  # no snapshot: nothing to see


# --------------------------------------------------------------------------- sequential


def test_auto_plans() -> None:
    assert SequentialPlan.auto().looks == (10, 20, 40)
    plan = SequentialPlan.auto(80)
    assert plan.looks == (10, 20, 40, 80) and plan.worst_case == 80
    assert plan.spend == pytest.approx((1 / 512, 7 / 512, 56 / 512, 448 / 512))
    assert SequentialPlan.auto(50).looks == (10, 20, 50)  # 40 is too close to 50 to be worth a look
    assert SequentialPlan.auto(5).looks == (5,)
    assert math.fsum(SequentialPlan.auto(100).spend) == pytest.approx(1.0)
    assert SequentialPlan.fixed(20) == SequentialPlan((20,), (1.0,))
    assert plan.at(40) == 2
    with pytest.raises(ValueError, match="not a look"):
        plan.at(30)
    with pytest.raises(ValueError, match="increasing"):
        SequentialPlan((20, 10), (0.5, 0.5))
    with pytest.raises(ValueError, match="sum to at most 1"):
        SequentialPlan((10, 20), (0.6, 0.6))


def test_sequential_p_is_the_smallest_p_over_its_share() -> None:
    fisher = fisher_one_sided(16, 20, 12, 20, alternative="less")
    assert sequential_p(16, 20, [12], SequentialPlan.fixed(20)) == fisher  # one look: Fisher
    plan = SequentialPlan.auto(40)
    looks = [5, 9, 20]
    expected = min(1.0, *(fisher_one_sided(16, 20, k, n, alternative="less") / s
                          for k, n, s in zip(looks, plan.looks, plan.spend, strict=True)))
    assert sequential_p(16, 20, looks, plan) == pytest.approx(expected)
    # more looks can only lower it
    assert sequential_p(16, 20, looks, plan) <= sequential_p(16, 20, looks[:2], plan)
    assert sequential_p(16, 20, [10], plan, alternative="greater") == 1.0  # capped
    with pytest.raises(ValueError):
        sequential_p(16, 20, [5, 9, 20, 30], plan)
    with pytest.raises(ValueError):
        sequential_p(16, 20, [11], plan)  # 11 of 10


def test_next_step_decisions() -> None:
    plan = SequentialPlan.auto(80)
    level = 0.05 / 60
    assert next_step(19, 20, [1, 2], plan, level=level).decision == "drop"  # 19/20 -> 2/20
    step = next_step(16, 20, [5], plan, level=level)
    assert (step.decision, step.draw) == ("continue", 10)  # 16/20 -> 5/10: worth a closer look
    assert next_step(16, 20, [10], plan, level=level).decision == "no-drop"  # 10/10: a rise
    assert next_step(16, 20, [8], plan, level=level).decision == "no-drop"  # 8/10: as before
    assert next_step(16, 20, [5, 11, 26, 50], plan, level=level).decision == "cap"
    assert next_step(0, 0, [5], plan, level=level).decision == "no-drop"  # no snapshot


def _sequential_alarms(keys: int, p: float, level: float, seed: int, futility: bool) -> int:
    plan = SequentialPlan.auto(80)
    rng = random.Random(seed)
    alarms = 0
    for _ in range(keys):
        k_before = sum(rng.random() < p for _ in range(20))
        after, running, drawn = [], 0, 0
        while True:
            target = plan.looks[len(after)]
            running += sum(rng.random() < p for _ in range(target - drawn))
            drawn = target
            after.append(running)
            if futility:
                step = next_step(k_before, 20, after, plan, level=level)
                if step.decision != "continue":
                    alarms += step.p_drop < level
                    break
            else:  # the greediest stopping rule: stop the moment it looks significant
                if sequential_p(k_before, 20, after, plan) < level or len(after) == len(plan.looks):
                    alarms += sequential_p(k_before, 20, after, plan) < level
                    break
    return alarms


@pytest.mark.parametrize(("p", "futility"), [(0.8, True), (0.5, True), (0.8, False)])
def test_sequential_false_alarms_stay_under_the_level(p: float, futility: bool) -> None:
    # 3,000 unchanged keys at level 0.05, stopped by the rule or by the greediest rule there is
    alarms = _sequential_alarms(3000, p, 0.05, seed=21, futility=futility)
    assert alarms / 3000 <= 0.05
    assert alarms > 0  # the level is used, not wasted


# --------------------------------------------------------------------------- the run's procedure


def test_without_pooled_tests_it_is_holm() -> None:
    ps = [0.01, 0.04, 0.03, 0.005, 0.2]
    run = RunTests.adjust({"s": SuiteTests(None, {f"k{i}": p for i, p in enumerate(ps)})})
    assert [run.keys[f"k{i}"] for i in range(5)] == pytest.approx(holm(ps))
    assert initial_key_level(0.05, 0, 5) == pytest.approx(0.01)


def test_a_rejected_suite_hands_its_level_to_its_keys() -> None:
    keys = {f"k{i}": 0.0015 for i in range(30)}
    alone = RunTests.adjust({"s": SuiteTests(0.5, keys)})
    assert not any(p < 0.05 for p in alone.keys.values())  # 0.0015 > 0.05 / 60
    boosted = RunTests.adjust({"s": SuiteTests(0.001, keys)})
    assert boosted.pooled["s"] == pytest.approx(0.002)
    assert all(p < 0.05 for p in boosted.keys.values())  # each now at 0.05 / 30
    assert boosted.suite_rejected("s", 0.05)


def test_one_strong_key_is_found_when_the_pooled_test_sees_nothing() -> None:
    keys = {"k0": 1e-5, **{f"k{i}": 0.6 for i in range(1, 30)}}
    run = RunTests.adjust({"s": SuiteTests(0.4, keys)})
    assert run.keys["k0"] < 0.05 and run.pooled["s"] > 0.05
    assert run.suite_rejected("s", 0.05)  # implied by its key


def test_levels_rise_as_hypotheses_fall() -> None:
    suites = {"a": SuiteTests(0.3, {"a1": 0.0001, "a2": 0.2}), "b": SuiteTests(0.001, {"b1": 0.3, "b2": 0.4})}
    before = {key: initial_key_level(0.05, 2, 4) for key in ("a1", "a2", "b1", "b2")}
    levels = RunTests.adjust(suites).levels(0.05)
    assert "a1" not in levels  # rejected
    assert all(levels[k] >= before[k] for k in levels)
    assert levels["b1"] > levels["a2"]  # suite b was rejected: its keys get its share
    assert RunTests.adjust({}).keys == {}


def _closed_test(suites: dict[str, SuiteTests], share: float, alpha: float) -> set[str]:
    """Reject h iff every intersection containing h is rejected by its weighted Bonferroni test."""
    pooled = [s for s, t in suites.items() if t.pooled is not None]
    nodes = [("pooled", s, s, t.pooled) for s, t in suites.items() if t.pooled is not None]
    nodes += [("key", k, s, p) for s, t in suites.items() for k, p in t.keys.items()]
    g = share if pooled else 0.0

    def weights(subset: tuple) -> dict:
        keys = [n for n in subset if n[0] == "key"]
        gone = [s for s in pooled if not any(n[0] == "pooled" and n[1] == s for n in subset)]
        orphans = sum(1 for s in gone if not any(n[2] == s for n in keys))
        out = {}
        for n in subset:
            if n[0] == "pooled":
                out[n] = g / len(pooled)
            else:
                out[n] = (1 - g + (orphans * g / len(pooled) if pooled else 0)) / len(keys)
                if n[2] in gone:
                    out[n] += g / len(pooled) / sum(1 for m in keys if m[2] == n[2])
        return out

    rejected = set()
    for node in nodes:
        subsets = (c for r in range(1, len(nodes) + 1) for c in itertools.combinations(nodes, r) if node in c)
        if all(any(n[3] < alpha * w for n, w in weights(c).items()) for c in subsets):
            rejected.add(node[1])
    return rejected


def test_the_shortcut_is_the_closed_test() -> None:
    rng = random.Random(5)
    for _ in range(120):
        suites, count = {}, 0
        for s in range(rng.randint(1, 3)):
            keys = {}
            for _ in range(rng.randint(1, 3)):
                keys[f"k{count}"] = rng.choice([rng.random() * 0.05, rng.random(), rng.random() * 0.005])
                count += 1
            suites[f"s{s}"] = SuiteTests(rng.choice([None, rng.random() * 0.05, rng.random() * 0.005]), keys)
        share = rng.choice([0.5, 0.25])
        run = RunTests.adjust(suites, pooled_share=share)
        shortcut = {name for name, p in [*run.keys.items(), *run.pooled.items()] if p < 0.05}
        assert shortcut == _closed_test(suites, share, 0.05), suites


def test_familywise_error_with_every_null_true() -> None:
    # Uniform p-values (the exact case of a continuous test): any rejection is false.
    rng = random.Random(11)
    runs, alarms = 4000, 0
    for _ in range(runs):
        suites = {f"s{s}": SuiteTests(rng.random(), {f"s{s}k{i}": rng.random() for i in range(10)})
                  for s in range(3)}
        run = RunTests.adjust(suites)
        alarms += any(p < 0.05 for p in [*run.keys.values(), *run.pooled.values()])
    assert alarms / runs < 0.06  # 0.05 in expectation at most; 3 standard errors of slack
    with pytest.raises(ValueError):
        RunTests.adjust({}, pooled_share=1.5)


def test_a_suite_that_always_passed_can_still_see_a_drop() -> None:
    """From a pass rate of 1, the approximation's variance under the drop can be 0: a drop
    to 0 is then certain to be seen, not never."""
    from prompttest.model.pooled import pooled_drop_power

    assert pooled_drop_power([(10, 10)] * 5, 1.0, 0.0, 0.025) == 1.0
    seen = detectable_pooled_drop([(10, 10)] * 5, 1.0, 0.025)
    assert seen is not None and 0.05 < seen < 0.5
