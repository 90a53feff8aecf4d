import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score

from fat.core.metrics import lwlrap, lwlrap_details, per_sample_lwlrap


def _random_case(seed: int, n: int = 300, classes: int = 20):
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, classes)) < 0.12).astype(np.uint8)
    truth[np.arange(n), rng.integers(0, classes, n)] = 1  # every sample has a label
    scores = rng.random((n, classes))  # continuous: tie-free with probability 1
    return truth, scores


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_lrap_weighted_by_label_count(seed):
    truth, scores = _random_case(seed)
    expected = label_ranking_average_precision_score(truth, scores, sample_weight=truth.sum(axis=1))
    assert lwlrap(truth, scores) == pytest.approx(expected, abs=1e-12)


def test_overall_is_weighted_mean_of_per_class():
    truth, scores = _random_case(11)
    result = lwlrap_details(truth, scores)
    assert result.weights.sum() == pytest.approx(1.0)
    assert np.nansum(result.per_class * result.weights) == pytest.approx(result.overall)
    np.testing.assert_allclose(result.weights, truth.sum(axis=0) / truth.sum())


def test_per_sample_matches_sklearn_per_sample():
    truth, scores = _random_case(3, n=40)
    for i in range(40):
        expected = label_ranking_average_precision_score(truth[i : i + 1], scores[i : i + 1])
        assert per_sample_lwlrap(truth, scores)[i] == pytest.approx(expected)


def test_hand_made_cases():
    # one sample, true labels ranked 1st and 3rd: precisions 1/1 and 2/3
    truth = np.array([[1, 0, 1, 0]])
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    result = lwlrap_details(truth, scores)
    assert result.overall == pytest.approx((1 + 2 / 3) / 2)
    assert result.per_class[0] == 1.0 and result.per_class[2] == pytest.approx(2 / 3)
    assert np.isnan(result.per_class[1]) and result.weights[1] == 0
    # perfect ranking scores 1, worst ranking of a single label scores 1/C
    assert lwlrap(np.eye(4), np.eye(4)) == 1.0
    assert lwlrap(np.array([[0, 0, 0, 1]]), np.array([[4, 3, 2, 1.0]])) == pytest.approx(0.25)


def test_class_weighting_differs_from_sample_average():
    # sample 0 has 3 labels all top-ranked, sample 1 has one label ranked last of 4
    truth = np.array([[1, 1, 1, 0], [0, 0, 0, 1]])
    scores = np.array([[4, 3, 2, 1.0], [4, 3, 2, 1.0]])
    assert lwlrap(truth, scores) == pytest.approx((3 * 1 + 0.25) / 4)


def test_ties_count_against_the_label():
    truth = np.array([[1, 0, 0]])
    scores = np.zeros((1, 3))
    assert lwlrap(truth, scores) == pytest.approx(1 / 3)
    assert lwlrap(truth, scores) == pytest.approx(
        label_ranking_average_precision_score(truth, scores)
    )


def test_samples_without_labels_are_ignored_not_crashed_on():
    truth, scores = _random_case(5, n=50)
    padded_truth = np.vstack([truth, np.zeros((7, truth.shape[1]), dtype=truth.dtype)])
    padded_scores = np.vstack([scores, np.random.default_rng(0).random((7, truth.shape[1]))])
    assert lwlrap(padded_truth, padded_scores) == pytest.approx(lwlrap(truth, scores))
    assert np.isnan(per_sample_lwlrap(padded_truth, padded_scores)[-1])
    assert np.isnan(lwlrap(np.zeros((3, 4)), np.ones((3, 4))))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        lwlrap(np.zeros((2, 3)), np.zeros((2, 4)))


def test_the_field_metrics_equal_scikit_learn_on_the_same_scores():
    from scipy.stats import norm
    from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

    from fat.core.metrics import class_scores, clip_metrics

    rng = np.random.default_rng(3)
    truth = (rng.random((60, 7)) < 0.25).astype(np.uint8)
    truth[:, 6] = 0  # a class nobody has: AP and AUC undefined, left out of the means
    truth[:, 5] = 1  # a class everybody has: AP 1, AUC undefined
    scores = rng.random((60, 7))
    got = clip_metrics(truth, scores)
    present = [c for c in range(7) if truth[:, c].any()]
    both = [c for c in present if not truth[:, c].all()]
    aps = [average_precision_score(truth[:, c], scores[:, c]) for c in present]
    aucs = [roc_auc_score(truth[:, c], scores[:, c]) for c in both]
    assert got["map"] == pytest.approx(np.mean(aps), abs=1e-12)
    assert got["micro_ap"] == pytest.approx(average_precision_score(truth, scores, average="micro"))
    assert got["auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert got["d_prime"] == pytest.approx(np.sqrt(2) * norm.ppf(np.mean(aucs)))
    per = class_scores(truth, scores)
    assert np.isnan(per.ap[6]) and np.isnan(per.auc[5]) and per.ap[5] == pytest.approx(1.0)
    single = np.zeros((60, 7), np.uint8)
    single[np.arange(60), rng.integers(0, 7, 60)] = 1
    expected = accuracy_score(single.argmax(1), scores.argmax(1))
    assert clip_metrics(single, scores)["accuracy"] == pytest.approx(expected)
