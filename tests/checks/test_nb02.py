"""Notebook 02's check: choose_ratio passes on the solution and names each mistake of the table."""


import pytest
from check_helpers import fails_with, mistake, stub

from peel_utils import checks


def test_choose_ratio_passes_on_solution(nb02, capsys):
    checks.check_choose_ratio(nb02["choose_ratio"])
    assert capsys.readouterr().out.count("✓ passed: choose_ratio") == 1


def ratio_rule(*, filter_method=True, reference="dense", strict=False, first_failure=False, give="ratio",
               smallest=False, mutate=False, units=False):
    def choose(table, method, max_drop):
        rows = table[table["method"] == method] if filter_method else table
        own = table[table["method"] == method]
        dense = own.loc[own["ratio"] == 0, "accuracy"].iloc[0] if reference == "dense" else own["accuracy"].max()
        drop = max_drop if units else max_drop / 100  # units: points compared with a fraction
        ok = rows["accuracy"] > dense - drop if strict else rows["accuracy"] >= dense - drop
        if first_failure:
            ok = ok.cummin()
        within = rows[ok]
        if mutate:
            table.drop(index=table.index[-1], inplace=True)
        if smallest:
            return float(within["ratio"].min())
        return float(within[give].max()) if give == "ratio" else float(within["accuracy"].min())
    return choose


@pytest.mark.parametrize("wrong, key", [
    (ratio_rule(reference="best"), "best"),
    (ratio_rule(strict=True), "strict"),
    (ratio_rule(first_failure=True), "first_failure"),
    (ratio_rule(filter_method=False), "mixing"),
    (ratio_rule(give="accuracy"), "accuracy"),
    (ratio_rule(smallest=True), "smallest"),
    (ratio_rule(mutate=True), "changes"),
    (ratio_rule(units=True), "units"),
    (lambda table, method, max_drop: table[table["method"] == method]["ratio"], "not_float"),
])
def test_choose_ratio_catches(wrong, key):
    with fails_with(mistake("choose_ratio", key)):
        checks.check_choose_ratio(wrong)


def test_choose_ratio_gives_the_expected_and_the_wrong_value():
    with fails_with("expected 0.4, got 0.9"):
        checks.check_choose_ratio(lambda table, method, max_drop: table["ratio"].max())




def test_choose_ratio_stub_raises_its_own_error():
    with pytest.raises(NotImplementedError):
        checks.check_choose_ratio(stub)
