"""The calibration promise of CalibratedIntentModel, checked on synthetic embeddings.

Each "intent" is a cloud of points around its own direction on the unit sphere. Fresh points from
the same clouds play the in-scope test messages; points around unused directions play out-of-scope.
"""
from __future__ import annotations

import numpy as np
import pytest

from components.in_scope_model import EVIDENCE_KINDS, CalibratedIntentModel, confidence_from_percentile

DIM = 32
THRESHOLD = 0.6


def clouds(rng, directions, per_direction, spread=0.35):
    points = np.repeat(directions, per_direction, axis=0) + spread * rng.standard_normal(
        (len(directions) * per_direction, DIM)
    ) / np.sqrt(DIM)
    labels = np.repeat([f"intent {i}" for i in range(len(directions))], per_direction)
    return points, labels


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    directions = rng.standard_normal((10, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    in_scope, unseen = directions[:6], directions[6:]
    train_x, train_y = clouds(rng, in_scope, 60)
    test_x, test_y = clouds(rng, in_scope, 400)
    oos_x, _ = clouds(rng, unseen, 300)
    return train_x, train_y, test_x, test_y, oos_x


@pytest.mark.parametrize("coverage", [0.9, 0.96])
def test_share_of_in_scope_messages_above_threshold_matches_the_configured_coverage(world, coverage):
    train_x, train_y, test_x, _, _ = world
    model = CalibratedIntentModel(threshold=THRESHOLD, in_scope_coverage=coverage).fit(train_x, [], train_y)
    confidence = model.predict(test_x, []).confidence
    assert np.mean(confidence >= THRESHOLD) == pytest.approx(coverage, abs=0.03)


def test_out_of_scope_messages_fall_below_the_threshold(world):
    train_x, train_y, test_x, test_y, oos_x = world
    model = CalibratedIntentModel(threshold=THRESHOLD).fit(train_x, [], train_y)
    probabilities = model.predict(test_x, []).intent_probabilities
    assert np.mean(np.array(model.intents)[probabilities.argmax(axis=1)] == test_y) > 0.95
    oos_confidence = model.predict(oos_x, []).confidence
    assert np.mean(oos_confidence < THRESHOLD) > 0.95


@pytest.mark.parametrize("kind", EVIDENCE_KINDS)
def test_each_kind_of_evidence_on_its_own_ranks_unseen_topics_lower(world, kind):
    # A kind of evidence that stopped separating in-scope from out-of-scope would quietly dilute
    # the average the shipped model uses.
    train_x, train_y, test_x, _, oos_x = world
    model = CalibratedIntentModel(threshold=THRESHOLD, evidence=[kind]).fit(train_x, [], train_y)
    in_scope = model.predict(test_x, []).confidence
    unseen = model.predict(oos_x, []).confidence
    pairs_ranked_right = np.mean(in_scope[:, None] > unseen[None, :])  # AUROC
    assert pairs_ranked_right > 0.9


def test_a_single_intent_still_gets_an_in_scope_confidence(world):
    train_x, train_y, test_x, test_y, oos_x = world
    only = train_y == "intent 0"
    model = CalibratedIntentModel(threshold=THRESHOLD).fit(train_x[only], [], train_y[only])
    in_scope = model.predict(test_x[test_y == "intent 0"], [])
    in_confidence = in_scope.confidence
    oos_confidence = model.predict(oos_x, []).confidence
    assert np.all(in_scope.intent_probabilities == 1.0)
    assert np.mean(in_confidence >= THRESHOLD) > 0.9
    assert np.mean(oos_confidence < THRESHOLD) > 0.95


def test_arrays_round_trip_gives_identical_predictions(world):
    train_x, train_y, test_x, _, oos_x = world
    model = CalibratedIntentModel().fit(train_x, [], train_y)
    arrays, metadata = model.to_arrays()
    reloaded = CalibratedIntentModel.from_arrays(arrays, metadata)
    for points in (test_x[:50], oos_x[:50]):
        before, after = model.predict(points, []), reloaded.predict(points, [])
        for field in ("raw_probabilities", "intent_probabilities", "confidence", "in_scope_percentile"):
            np.testing.assert_array_equal(getattr(before, field), getattr(after, field))


def test_percentile_to_confidence_map_puts_the_boundary_on_the_threshold():
    percentiles = np.linspace(0, 1, 101)
    confidence = confidence_from_percentile(percentiles, in_scope_coverage=0.95, threshold=0.6)
    assert confidence_from_percentile(np.array([0.05]), 0.95, 0.6)[0] == pytest.approx(0.6)
    assert confidence[0] == 0.0 and confidence[-1] == pytest.approx(1.0)
    assert np.all(np.diff(confidence) > 0)


def test_intent_probabilities_are_calibrated_on_overlapping_intents():
    rng = np.random.default_rng(11)
    directions = rng.standard_normal((5, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    train_x, train_y = clouds(rng, directions, 80, spread=3.0)
    test_x, test_y = clouds(rng, directions, 600, spread=3.0)
    model = CalibratedIntentModel().fit(train_x, [], train_y)
    probabilities = model.predict(test_x, []).intent_probabilities
    accuracy = np.mean(np.array(model.intents)[probabilities.argmax(axis=1)] == test_y)
    assert 0.6 < accuracy < 0.95  # the intents really overlap
    # On average the top intent's probability matches how often it is right.
    assert probabilities.max(axis=1).mean() == pytest.approx(accuracy, abs=0.03)


def test_serving_logits_equal_the_training_feature_matrix_path():
    # The per-message fast path must give the classifier exactly what it was trained on.
    import scipy.sparse as sp

    from components.in_scope_model import _SingleFit

    rng = np.random.default_rng(3)
    dense = rng.standard_normal((120, DIM))
    words = sp.random(120, 60, density=0.05, format="csr", random_state=4)
    chars = sp.random(120, 400, density=0.03, format="csr", random_state=5)
    for block in (words, chars):
        block.data = np.ceil(block.data * 4)  # counts, as CountVectorsFeaturizer gives
    fit = _SingleFit(n_intents=4, neighbours=5, regularisation_c=10.0).fit(
        dense, [words, chars], rng.integers(0, 4, 120)
    )
    expected = np.asarray(fit._classifier_input(dense, [words, chars]) @ fit.coef.T) + fit.intercept
    np.testing.assert_allclose(fit.logits(dense, [words, chars]), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fit.logits(dense[:1], [words[:1], chars[:1]]), expected[:1], rtol=0, atol=1e-10)


def test_neighbour_evidence_compares_only_with_the_top_intents_examples_and_follows_new_training_data():
    # Served messages are compared with their top intent's examples alone; the scores are those of the
    # comparison with every example, masked to that intent.
    import scipy.sparse as sp

    from components.in_scope_model import _SingleFit

    rng = np.random.default_rng(11)
    dense = rng.standard_normal((90, DIM))
    labels = rng.integers(0, 3, 90)
    words = sp.random(90, 40, density=0.05, format="csr", random_state=2)
    fit = _SingleFit(n_intents=3, neighbours=4, regularisation_c=1.0).fit(dense, [words], labels)
    messages = rng.standard_normal((25, DIM))
    top = rng.integers(0, 3, 25)

    def by_masking(train, train_labels):
        everything = messages @ train.T
        return np.array([np.sort(everything[row, train_labels == intent])[-4:].mean() for row, intent in enumerate(top)])

    logits = fit.logits(messages, [words[:25]])
    np.testing.assert_allclose(fit.scores_for(messages, logits, top)["neighbours"], by_masking(dense, labels),
                               rtol=0, atol=1e-12)
    fit.train_dense, fit.train_labels = dense[::-1].copy(), labels[::-1].copy()  # loaded arrays replace them
    fit.train_dense[:30] = 0.0
    np.testing.assert_allclose(fit.scores_for(messages, logits, top)["neighbours"],
                               by_masking(fit.train_dense, fit.train_labels), rtol=0, atol=1e-12)


# --- several dense views (one per sentence encoder) -------------------------------------------

@pytest.fixture(scope="module")
def two_views(world):
    train_x, train_y, test_x, test_y, oos_x = world
    rng = np.random.default_rng(21)
    mixing = rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)
    # A second encoder's view of the same messages: the topic seen through another linear map.
    view = lambda points: points @ mixing + 0.1 * rng.standard_normal(points.shape)  # noqa: E731
    return [train_x, view(train_x)], train_y, [test_x, view(test_x)], test_y, [oos_x, view(oos_x)]


def test_a_second_view_keeps_the_calibration_promise_and_its_ranking(two_views):
    train, train_y, test, test_y, oos = two_views
    model = CalibratedIntentModel(threshold=THRESHOLD, in_scope_coverage=0.9).fit(train, [], train_y)
    prediction = model.predict(test, [])
    assert np.mean(prediction.confidence >= THRESHOLD) == pytest.approx(0.9, abs=0.03)
    assert np.mean(np.array(model.intents)[prediction.intent_probabilities.argmax(axis=1)] == test_y) > 0.95
    assert np.mean(model.predict(oos, []).confidence < THRESHOLD) > 0.95


def test_the_second_views_evidence_counts(world):
    # The first view is noise that says nothing about the topic; only the second view can tell
    # in-scope from out-of-scope messages. If its evidence were dropped, nothing would separate them.
    train_x, train_y, test_x, _, oos_x = world
    rng = np.random.default_rng(5)
    noise = lambda points: rng.standard_normal(points.shape)  # noqa: E731
    model = CalibratedIntentModel(threshold=THRESHOLD).fit([noise(train_x), train_x], [], train_y)
    in_scope = model.predict([noise(test_x), test_x], []).confidence
    unseen = model.predict([noise(oos_x), oos_x], []).confidence
    assert np.mean(in_scope[:, None] > unseen[None, :]) > 0.9
    assert len(model.scored_kinds()) == 2 * len(EVIDENCE_KINDS)


def test_one_view_in_a_list_is_the_single_encoder_model(world):
    train_x, train_y, test_x, _, _ = world
    single = CalibratedIntentModel().fit(train_x, [], train_y).predict(test_x[:50], [])
    listed = CalibratedIntentModel().fit([train_x], [], train_y).predict([test_x[:50]], [])
    np.testing.assert_array_equal(single.confidence, listed.confidence)
    np.testing.assert_allclose(single.raw_probabilities, listed.raw_probabilities, rtol=0, atol=1e-12)


def test_two_views_round_trip_and_a_missing_view_is_a_clear_error(two_views):
    train, train_y, test, _, _ = two_views
    model = CalibratedIntentModel().fit(train, [], train_y)
    reloaded = CalibratedIntentModel.from_arrays(*model.to_arrays())
    np.testing.assert_array_equal(model.predict(test, []).confidence, reloaded.predict(test, []).confidence)
    with pytest.raises(ValueError, match="trained on 2 dense views, got 1"):
        reloaded.predict(test[:1], [])


def test_one_served_message_gets_the_same_bits_without_scipy_matrices(two_views):
    # CalibratedIntentClassifier serves one message at a time through `predict_row` (its sparse blocks as their
    # non-zeros); `predict` on the same (1, width) matrices is the reference, to the last bit.
    import scipy.sparse as sp

    from components.in_scope_model import sparse_row

    train, train_y, test, _, oos = two_views
    rng = np.random.default_rng(11)
    n = len(train_y)
    words = sp.random(n, 50, density=0.06, format="csr", random_state=1)
    chars = sp.random(n, 300, density=0.04, format="csr", random_state=2)
    for block in (words, chars):
        block.data = np.ceil(block.data * 4)
    model = CalibratedIntentModel().fit(train, [words, chars], train_y)
    messages = [[view[i : i + 1] for view in test] for i in range(0, 400, 7)]
    messages += [[view[i : i + 1] for view in oos] for i in range(0, 300, 11)]
    for index, views in enumerate(messages):
        counts = [sp.random(1, 50, density=0.1, random_state=index), sp.random(1, 300, density=0.05, random_state=index)]
        counts = [sp.coo_matrix(np.ceil(block.toarray() * 3)) for block in counts]
        if index % 5 == 0:
            counts[0] = sp.coo_matrix((1, 50))  # a message without any known word
        expected = model.predict(views, counts)
        got = model.predict_row(views, [sparse_row(block) for block in counts])
        for name in ("raw_probabilities", "intent_probabilities", "confidence", "in_scope_percentile"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_sparse_row_holds_what_scipy_csr_conversion_holds():
    import scipy.sparse as sp

    from components.in_scope_model import sparse_row

    cases = [
        sp.coo_matrix((np.array([1, 3, 2], dtype=np.int64), (np.zeros(3, int), np.array([2, 5, 9]))), shape=(1, 12)),
        # unsorted columns and a duplicate: scipy sorts and sums
        sp.coo_matrix((np.array([1.0, 3.0, 2.0, 4.0]), (np.zeros(4, int), np.array([9, 2, 5, 2]))), shape=(1, 12)),
        sp.coo_matrix((1, 12)),
        sp.coo_matrix((np.array([0.0, 2.0], dtype=np.float32), (np.zeros(2, int), np.array([3, 4]))), shape=(1, 12)),
        sp.csr_matrix(np.array([[0, 1, 0, 2]])),
    ]
    for matrix in cases:
        csr = sp.csr_matrix(matrix, dtype=np.float64)
        indices, data, width = sparse_row(matrix)
        np.testing.assert_array_equal(indices, csr.indices)
        np.testing.assert_array_equal(data, csr.data)
        assert data.dtype == np.float64 and width == matrix.shape[1]
    with pytest.raises(ValueError, match="one row"):
        sparse_row(sp.coo_matrix((2, 3)))


def test_the_numpy_helpers_give_scipys_and_add_ats_bits():
    from scipy.special import logsumexp

    from components.in_scope_model import _add_rows, _logsumexp

    rng = np.random.default_rng(2)
    for shape in [(1, 60), (9, 60), (1, 1), (4, 2)]:
        values = rng.standard_normal(shape) * 40
        for keepdims in (False, True):
            np.testing.assert_array_equal(_logsumexp(values, 1, keepdims), logsumexp(values, axis=1, keepdims=keepdims))
    infinite = np.array([[-np.inf, -np.inf], [1.0, np.inf]])
    np.testing.assert_array_equal(_logsumexp(infinite, 1), logsumexp(infinite, axis=1))
    for targets, count in [(1, 0), (1, 1), (1, 250), (3, 40)]:
        target, values = rng.standard_normal((targets, 30)), rng.standard_normal((count, 30)) * 1e3
        rows = rng.integers(0, targets, count)
        expected = target.copy()
        np.add.at(expected, rows, values)
        _add_rows(target, rows, values)
        np.testing.assert_array_equal(target, expected)
