"""The settings forms' parsers on any input: what they accept is a ladder the tier rules can
rank without overlaps, and what they refuse names a field of the form."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from plugin_server.admin.member_admin import FieldError
from plugin_server.admin.settings_forms import parse_earning, parse_ladder

numbers = st.one_of(st.integers(-5, 2000).map(str),
                    st.decimals(-10, 2000, places=2).map(str),
                    st.sampled_from(["", "x", "1e3", "NaN", "-0", "Infinity"]))
rows = st.lists(st.fixed_dictionaries({
    "name": st.sampled_from(["Bronze", "Silver", "Gold", "gold", "", " Platinum "]),
    "threshold": numbers, "retention": st.one_of(st.just(""), numbers),
    "multiplier": st.one_of(st.just(""), numbers), "remove": st.sampled_from(["", "on"]),
}), max_size=6)


@given(rows, st.sampled_from(["points_earned", "amount_spent", "orders", "bogus"]))
def test_an_accepted_ladder_climbs_without_overlap(tier_rows: list[dict[str, str]],
                                                   basis: str) -> None:
    form = {"tier_basis": basis, "tier_window": "lifetime"}
    for number, row in enumerate(tier_rows):
        form.update({f"tiers-{number}-{key}": value for key, value in row.items()})
    try:
        ladder = parse_ladder(form)
    except FieldError as error:
        assert error.field in form or error.field == "tiers"
        return
    kept = [row for row in tier_rows if row["remove"] != "on"
            and any(row[key] for key in ("name", "threshold", "retention", "multiplier"))]
    assert len(ladder.tiers) == len(kept)
    names = [tier.name.casefold() for tier in ladder.tiers]
    assert len(set(names)) == len(names)
    for lower, upper in zip(ladder.tiers, ladder.tiers[1:], strict=False):
        assert upper.threshold > lower.threshold
        if upper.retention_threshold is not None:
            assert lower.threshold <= upper.retention_threshold <= upper.threshold
    for tier in ladder.tiers:
        assert tier.threshold >= 0 and Decimal(0) <= tier.multiplier <= 10
        if basis != "amount_spent":
            assert tier.threshold == tier.threshold.to_integral_value()


@given(st.dictionaries(st.sampled_from(["points_per_unit", "rounding", "award_on",
                                        "pending_days", "include_taxes"]),
                       st.one_of(numbers, st.sampled_from(["down", "up", "payment", "on"]))))
def test_accepted_earning_is_within_its_limits(form: dict[str, str]) -> None:
    try:
        earning = parse_earning(form)
    except FieldError as error:
        assert error.field in ("points_per_unit", "rounding", "award_on", "pending_days")
        return
    assert 0 <= earning.points_per_unit <= 1000 and 0 <= earning.pending_days <= 365
