"""Notebook 02's checks: global_layer_sparsity and choose_ratio pass on the solution and name each mistake of the
table."""


import pytest
import torch
from check_helpers import fails_with, mistake, stub

from peel_utils import checks
from peel_utils.checks.nb02 import check_global_layer_sparsity


def test_global_layer_sparsity_passes_on_solution(nb02, capsys):
    check_global_layer_sparsity(nb02["global_layer_sparsity"])
    assert capsys.readouterr().out.count("✓ passed: global_layer_sparsity") == 1


def layer_rule(*, key=torch.abs, k_shift=0, ratio_of=lambda r: r, per_layer=False, give="fraction", mutate=False,
               zero_guard=True, as_tensor=False):
    def predict(weights, ratio):
        if mutate:
            next(iter(weights.values())).mul_(0.5)
        everything = torch.cat([key(w).flatten() for w in weights.values()])
        k = round(ratio_of(ratio) * everything.numel()) + k_shift
        out = {}
        for name, w in weights.items():
            if per_layer:
                zeros = round(ratio * w.numel())
            elif k <= 0 and zero_guard:
                zeros = 0
            else:
                zeros = int((key(w) <= everything.kthvalue(k).values).sum())
            value = {"fraction": zeros / w.numel(), "share": zeros / max(k, 1), "kept": 1 - zeros / w.numel(),
                     "count": zeros}[give]
            out[name] = torch.tensor(value) if as_tensor else value
        return out
    return predict


@pytest.mark.parametrize("wrong, key", [
    (layer_rule(per_layer=True), "per_layer"),
    (layer_rule(key=lambda w: w), "signed"),
    (layer_rule(k_shift=-1), "one_too_few"),
    (layer_rule(k_shift=1), "one_too_many"),
    (layer_rule(give="share"), "share"),
    (layer_rule(ratio_of=lambda r: 1 - r), "fraction"),
    (layer_rule(give="kept"), "density"),
    (layer_rule(give="count"), "counts"),
    (layer_rule(zero_guard=False), "edges"),
    (layer_rule(as_tensor=True), "tensor"),
    (lambda weights, ratio: [0.25, 1 / 6, 5 / 6], "returns"),
    (layer_rule(mutate=True), "changes"),
])
def test_global_layer_sparsity_catches(wrong, key):
    with fails_with(mistake("global_layer_sparsity", key)):
        check_global_layer_sparsity(wrong)


def test_global_layer_sparsity_gives_the_expected_and_the_wrong_value():
    with fails_with(r"expected conv.weight 0.250, layer2.weight 0.167, fc.weight 0.833 .* got conv.weight 0.400"):
        check_global_layer_sparsity(lambda weights, ratio: {name: ratio for name in weights})


def test_global_layer_sparsity_stub_raises_its_own_error():
    with pytest.raises(NotImplementedError):
        check_global_layer_sparsity(stub)


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
