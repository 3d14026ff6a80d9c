"""peel_utils.handover: the registry of files passed between notebooks, their records, load and train_or_load."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch_pruning as tp

from peel_utils import checkpoints, handover, models, structured

META = handover.Meta("resnet18", 4, small_input=False, image_size=16, in_channels=3, dataset="mnist5k",
                     extra={"seed": 0, "epochs": 2})


def test_every_file_is_written_by_an_existing_notebook():
    notebooks = {p.stem for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")}
    assert {entry.notebook for entry in handover.REGISTRY.values()} <= notebooks
    assert all(entry.file.startswith(entry.notebook[:2]) for entry in handover.REGISTRY.values())


def test_record_is_flat_json_and_parses_back():
    record = META.to_json()
    assert record == {"arch": "resnet18", "num_classes": 4, "small_input": False, "image_size": 16,
                      "in_channels": 3, "dataset": "mnist5k", "seed": 0, "epochs": 2}
    assert handover.Meta.from_json(record) == META
    assert META.input_shape == (3, 16, 16)
    assert META.with_extra(lr=0.1).extra == {"seed": 0, "epochs": 2, "lr": 0.1}
    with pytest.raises(ValueError, match=r"old.json lacks \['in_channels'\]"):
        handover.Meta.from_json({k: v for k, v in record.items() if k != "in_channels"}, "old.json")


def test_save_then_load_rebuilds_the_model_in_eval_mode(tmp_path, seeded):
    saved = models.resnet18(4)
    handover.save(saved, tmp_path, "finetuned", META)
    assert (tmp_path / "03_resnet50_finetuned.pt").exists()
    model, meta = handover.load(tmp_path, "finetuned", dataset="mnist5k")
    assert meta == META and not model.training
    assert torch.equal(model.fc.weight, saved.fc.weight)
    with pytest.raises(ValueError, match="trained on 'mnist5k', not 'cifar10'"):
        handover.load(tmp_path, "finetuned", dataset="cifar10")


def test_a_missing_file_names_the_notebook_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="written by notebooks/03_resnet50_finetune.ipynb"):
        handover.load(tmp_path, "gmp")
    with pytest.raises(ValueError, match="no hand-over file 'large'"):
        handover.load(tmp_path, "large")


def test_further_runs_get_their_own_files(tmp_path):
    assert handover.path(tmp_path, "student").name == "04_resnet18_student.pt"
    assert handover.path(tmp_path, "student", run=2).name == "04_resnet18_student_run2.pt"


def test_structured_model_is_rebuilt_from_its_layer_channels(tmp_path, seeded):
    dense = models.resnet18(4).eval()
    pruner = structured.ChannelPruner(dense, META.input_shape)
    pruned = pruner.prune_to(tp.importance.RandomImportance(), pruner.macs() / 2).eval()
    handover.save(pruned, tmp_path, "structured",
                  dataclasses.replace(META, layer_channels=models.channel_counts(pruned)).with_extra(
                      variant="random", mac_target=2, dense_same_budget_test_accuracy=0.5))
    loaded, meta = handover.load(tmp_path, "structured")
    x = torch.randn(3, *META.input_shape)
    with torch.no_grad():
        assert torch.equal(loaded(x), pruned(x))
    assert meta.layer_channels == models.channel_counts(pruned)


def test_train_or_load_trains_once_per_recipe(tmp_path, seeded):
    calls = []

    def train_fn():
        calls.append(1)
        with torch.no_grad():
            model.fc.bias.fill_(0.5)
        return [{"epoch": 1, "val_accuracy": 0.5}]

    model = models.resnet18(4)
    first = handover.train_or_load(model, tmp_path, "control", META, train_fn)
    model = models.resnet18(4)
    again = handover.train_or_load(model, tmp_path, "control", META, train_fn)
    assert len(calls) == 1 and torch.all(model.fc.bias == 0.5)
    pd.testing.assert_frame_equal(first, again)
    model = models.resnet18(4)
    handover.train_or_load(model, tmp_path, "control", META.with_extra(epochs=3), train_fn)  # another recipe
    assert len(calls) == 2
    assert checkpoints.load_meta(handover.path(tmp_path, "control"))["epochs"] == 3


def test_a_history_in_percent_is_trained_again(tmp_path, seeded, capsys):
    calls = []

    def train_fn():
        calls.append(1)
        return [{"epoch": 1, "val_accuracy": 0.5}]

    handover.train_or_load(models.resnet18(4), tmp_path, "control", META, train_fn)
    history_path = handover.path(tmp_path, "control").with_suffix(".csv")
    history_path.write_text("epoch,val_accuracy\n1,50.0\n")  # an earlier workbook's history, in percent
    again = handover.train_or_load(models.resnet18(4), tmp_path, "control", META, train_fn)
    assert len(calls) == 2 and again["val_accuracy"].tolist() == [0.5]
    assert "holds accuracies in percent" in capsys.readouterr().out
    assert pd.read_csv(history_path)["val_accuracy"].tolist() == [0.5]  # rewritten in fractions


def test_a_record_with_tuples_still_counts_as_the_same_recipe(tmp_path):
    meta = META.with_extra(ratios=(0.5, 0.9))  # JSON reads tuples back as lists
    handover.save(models.LeNet(), tmp_path, "lenet", meta)
    assert handover.is_current(tmp_path, "lenet", meta)
    assert not handover.is_current(tmp_path, "lenet", META)


def test_importing_handover_leaves_torch_pruning_unloaded():
    code = "import sys, peel_utils.handover; print('torch_pruning' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.strip() == "False"


def test_save_refuses_a_record_without_a_declared_key_and_writes_nothing(tmp_path):
    assert handover.REGISTRY["pruned"].provides == ("prune_method", "ratio", "max_drop", "chosen_by")
    with pytest.raises(ValueError, match=r"'pruned' \(02_resnet50_pruned.pt\) must record 'ratio'.*ratio=\.\.\."):
        handover.save(models.LeNet(), tmp_path, "pruned", META.with_extra(prune_method="global"))
    assert list(tmp_path.iterdir()) == []


def test_reading_an_old_record_without_a_declared_key_names_the_notebook(tmp_path):
    meta = META.with_extra(dense_same_budget_test_accuracy=0.9, dense_same_budget_test_outcomes=[1, 0])
    handover.save(models.resnet18(4), tmp_path, "gmp", meta)
    json_path = tmp_path / "03_resnet50_gmp.json"
    json_path.write_text(json_path.read_text().replace('"dense_same_budget_test_accuracy": 0.9,', ""))
    with pytest.raises(ValueError, match=r"lacks 'dense_same_budget_test_accuracy'.*re-run that notebook") as err:
        handover.load(tmp_path, "gmp")
    assert "notebooks/03_resnet50_finetune.ipynb" in str(err.value)


def test_every_recipe_entry_read_across_notebooks_is_declared():
    root = Path(__file__).resolve().parents[1]
    sources = [*(root / "notebooks").glob("*.ipynb"), *(root / "benchmarks").glob("*.py")]
    read = {key for source in sources
            for key in re.findall(r"""\.extra(?:\[|\.get\()\\?["']([a-z_0-9]+)""", source.read_text())}
    declared = {key for entry in handover.REGISTRY.values() for key in entry.provides}
    assert {"ratio", "dense_same_budget_test_accuracy", "variant"} <= read  # the pattern finds the reads
    assert read <= declared
