"""`benchmarks.paired.alternate`: the run order and the median of per-round ratios."""

from __future__ import annotations

from benchmarks.paired import alternate


def test_runs_alternate_a_b_b_a_and_the_ratio_is_the_median_per_round() -> None:
    order: list[str] = []
    a_qps, b_qps = iter([10.0, 30.0, 20.0]), iter([5.0, 10.0, 40.0])

    def run(side: str, values) -> dict[str, float]:
        order.append(side)
        return {"qps": next(values)}

    ticks: list[int] = []
    result = alternate(lambda: run("a", a_qps), lambda: run("b", b_qps), 3, lambda: ticks.append(1))
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert result["round_ratios"] == [2.0, 3.0, 0.5] and result["ratio"] == 2.0
    assert [r["qps"] for r in result["a_runs"]] == [10.0, 30.0, 20.0] and len(ticks) == 6
