"""Metrics against scikit-learn as the oracle."""

from __future__ import annotations

import numpy
import pytest
import torch
from sklearn import metrics as reference

from lamina.tasks.decisions import confusion_matrix
from lamina.training.metrics import Predictions, compute_metrics, roc_auc


@pytest.fixture
def multiclass():
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 4, (500,), generator=generator)
    logits = torch.randn(500, 4, generator=generator) + 1.5 * torch.nn.functional.one_hot(targets, 4)
    return Predictions("classification", logits.softmax(1), targets)


def test_classification_metrics_match_scikit_learn(multiclass):
    values = compute_metrics(multiclass, ["accuracy", "macro_f1", "precision", "recall", "roc_auc"])
    y, predicted, scores = multiclass.targets.numpy(), multiclass.labels().numpy(), multiclass.scores.numpy()
    assert values["accuracy"] == pytest.approx(reference.accuracy_score(y, predicted), abs=1e-12)
    assert values["macro_f1"] == pytest.approx(reference.f1_score(y, predicted, average="macro"), abs=1e-12)
    assert values["precision"] == pytest.approx(reference.precision_score(y, predicted, average="macro"), abs=1e-12)
    assert values["recall"] == pytest.approx(reference.recall_score(y, predicted, average="macro"), abs=1e-12)
    expected_auc = reference.roc_auc_score(y, scores, multi_class="ovr", average="macro")
    assert values["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)


def test_confusion_matrix_matches_scikit_learn(multiclass):
    ours = confusion_matrix(multiclass.labels(), multiclass.targets, 4).numpy()
    numpy.testing.assert_array_equal(ours, reference.confusion_matrix(multiclass.targets, multiclass.labels()))


def test_binary_roc_auc_with_ties_matches_scikit_learn():
    scores = torch.tensor([0.1, 0.4, 0.4, 0.4, 0.8, 0.9, 0.2, 0.2])
    positives = torch.tensor([0, 0, 1, 1, 1, 1, 0, 1]).bool()
    assert roc_auc(scores, positives) == pytest.approx(reference.roc_auc_score(positives, scores), abs=1e-12)


def test_f1_of_a_class_never_predicted_is_zero_like_scikit_learn():
    targets = torch.tensor([0, 1, 2, 2])
    scores = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1]), 3).float()
    values = compute_metrics(Predictions("classification", scores, targets), ["macro_f1", "precision"])
    predicted = [0, 1, 1, 1]
    assert values["macro_f1"] == pytest.approx(reference.f1_score(targets, predicted, average="macro", zero_division=0))
    assert values["precision"] == pytest.approx(
        reference.precision_score(targets, predicted, average="macro", zero_division=0)
    )


def test_regression_metrics_match_scikit_learn():
    generator = torch.Generator().manual_seed(1)
    targets = torch.randn(200, 2, generator=generator, dtype=torch.float64) * 10 + 3
    scores = targets + torch.randn(200, 2, generator=generator, dtype=torch.float64)
    values = compute_metrics(Predictions("regression", scores, targets), ["mse", "rmse", "mae", "r2"])
    assert values["mse"] == pytest.approx(reference.mean_squared_error(targets, scores), rel=1e-9)
    assert values["rmse"] == pytest.approx(reference.mean_squared_error(targets, scores) ** 0.5, rel=1e-9)
    assert values["mae"] == pytest.approx(reference.mean_absolute_error(targets, scores), rel=1e-9)
    assert values["r2"] == pytest.approx(reference.r2_score(targets, scores), rel=1e-9)


def test_f1_and_roc_auc_are_about_the_positive_class_of_two_class_data():
    generator = torch.Generator().manual_seed(3)
    targets = torch.randint(0, 2, (200,), generator=generator)
    first = torch.rand(200, generator=generator)
    scores = torch.stack([first, 1 - first], dim=1)
    for positive in (0, 1):
        values = compute_metrics(Predictions("classification", scores, targets, positive), ["f1", "roc_auc"])
        predicted = scores.argmax(dim=1).numpy()
        expected = reference.f1_score(targets.numpy(), predicted, pos_label=positive)
        assert values["f1"] == pytest.approx(expected, abs=1e-12)
        area = reference.roc_auc_score((targets == positive).numpy(), scores[:, positive].numpy())
        assert values["roc_auc"] == pytest.approx(area, abs=1e-12)
