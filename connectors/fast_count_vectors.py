"""CountVectorsFeaturizer serving one message without building scipy matrices twice (Rasa 3.6), installed by
connectors/rasa_speedups.py.

For every message Rasa 3.6's `CountVectorsFeaturizer.process` calls scikit-learn's `CountVectorizer.transform` twice
per text (once with each token as a document: the sequence features; once with the tokens joined by spaces: the
sentence features). Each call analyses the documents, builds a CSR matrix with scipy's checks, sorts it, and Rasa
converts it to a COO matrix (scipy's checks again). For a customer message that bookkeeping, not the counting, is most
of the featurizer's CPU: about 0.35 ms (word tokens) and 0.5 ms (char_wb 1-4 grams) per message here
(bench/README_cluster.md, "Session 20").

Here one message's text is counted as scikit-learn counts it (the vectorizer's own analyzer, looked up in its own
vocabulary, each document's counts sorted by column as `sort_indices` leaves them) and the two COO matrices are
made directly with the attributes scipy's `tocoo` gives them: the same class, shape, index and data dtypes,
values and order of the non-zeros (row by row, columns ascending), `has_canonical_format` False. The sentence row
is the sum of the token rows: for the configurations served here the analyzer of the joined text yields exactly
the features of each token in turn (char_wb n-grams never cross whitespace; word unigrams of `\\b\\w+\\b` never
cross the joining space), so its counts are those sums. Each token's counts are kept (up to CACHE_SIZE tokens per
featurizer, then the cache starts again) while the featurizer's vocabulary is the same object of the same size.

Only what is proven identical takes this path: one message per call (serving; training and batches run Rasa's
code), the text attribute (the others, absent from a parse, run Rasa's code), a plain `CountVectorizer` with
Rasa's token pattern, no custom preprocessor or tokenizer, no accent stripping, counts (not binary) as int64,
word unigrams or char_wb n-grams, and no OOV token replacement. Anything else runs Rasa's own `process`. At
install a self-check compares a matrix made here with scikit-learn's and scipy's on a small vocabulary; if scipy
ever builds its COO matrices with other attributes, the speed-up is not installed.

tests/connector/test_fast_count_vectors.py (edge cases, against Rasa's own code) and
tests/integration/test_nlu_speedups.py (every NLU example and test-story text on the shipped model: the features
bit for bit, and the whole parse ==) check it.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

import numpy as np

logger = logging.getLogger(__name__)

_INSTALLED_FLAG = "_kesar_lane_fast_count_vectors_installed"
_PLAN_KEY = "_kesar_lane_count_plan"
RASA_TOKEN_PATTERN = r"(?u)\b\w+\b"  # the token_pattern Rasa gives word vectorizers
CACHE_SIZE = 20000  # tokens whose counts are kept per featurizer

# One document's counts: its columns (ascending, int32), their counts (the vectorizer's dtype), and each column
# repeated as often as it counts (int32).
Counts = Tuple[np.ndarray, np.ndarray, np.ndarray]


class _Plan:
    """What one featurizer needs to count its text attribute, valid while its vectorizer and vocabulary stay."""

    __slots__ = ("vectorizer", "vocabulary", "size", "analyze", "data_dtype", "cache", "component_state")

    def __init__(self, vectorizer: Any, component_state: tuple) -> None:
        self.vectorizer = vectorizer
        self.vocabulary: Dict[Text, int] = vectorizer.vocabulary_
        self.size = len(self.vocabulary)
        self.analyze = vectorizer.build_analyzer()
        self.data_dtype = np.dtype(vectorizer.dtype)
        self.cache: Dict[Text, Counts] = {}
        self.component_state = component_state

    def valid_for(self, vectorizer: Any, component_state: tuple) -> bool:
        return (vectorizer is self.vectorizer and getattr(vectorizer, "vocabulary_", None) is self.vocabulary
                and len(self.vocabulary) == self.size and component_state == self.component_state)


def _component_state(component: Any) -> tuple:
    return (component.analyzer, component.lowercase, component.use_lemma, component.OOV_token)


def _served_here(component: Any, vectorizer: Any) -> bool:
    """True when `vectorizer` (the text attribute's) counts one message here exactly as Rasa's code does."""
    from sklearn.feature_extraction.text import CountVectorizer

    if type(vectorizer) is not CountVectorizer or component.OOV_token and component.analyzer == "word":
        return False
    vocabulary = getattr(vectorizer, "vocabulary_", None)
    if type(vocabulary) is not dict or not vocabulary or len(vocabulary) >= np.iinfo(np.int32).max:
        return False
    if (vectorizer.input != "content" or vectorizer.preprocessor is not None or vectorizer.tokenizer is not None
            or vectorizer.strip_accents is not None or vectorizer.binary or np.dtype(vectorizer.dtype) != np.int64):
        return False
    if vectorizer.analyzer == "char_wb":
        return True
    return (vectorizer.analyzer == "word" and tuple(vectorizer.ngram_range) == (1, 1)
            and vectorizer.token_pattern == RASA_TOKEN_PATTERN)


def _plan(component: Any) -> Optional[_Plan]:
    from rasa.shared.nlu.constants import TEXT

    vectorizers = component.vectorizers
    vectorizer = vectorizers.get(TEXT) if isinstance(vectorizers, dict) else None
    state = _component_state(component)
    plan = component.__dict__.get(_PLAN_KEY)
    if plan is not None and plan.valid_for(vectorizer, state):
        return plan
    if vectorizer is None or not _served_here(component, vectorizer):
        component.__dict__.pop(_PLAN_KEY, None)
        return None
    plan = component.__dict__[_PLAN_KEY] = _Plan(vectorizer, state)
    return plan


def _counts(plan: _Plan, processed_token: Text) -> Counts:
    """scikit-learn's `_count_vocab` for one document, its columns sorted as `sort_indices` sorts them."""
    vocabulary = plan.vocabulary
    counter: Dict[int, int] = {}
    for feature in plan.analyze(processed_token):
        index = vocabulary.get(feature)
        if index is not None:
            counter[index] = counter.get(index, 0) + 1
    items = sorted(counter.items())
    columns = np.array([column for column, _ in items], dtype=np.int32)
    values = np.array([count for _, count in items], dtype=plan.data_dtype)
    return columns, values, np.repeat(columns, values)


_INT32_MAX = int(np.iinfo(np.int32).max)
_MAXPRINT = 50  # scipy.sparse's MAXPRINT; the self-check compares it with scipy's


def _coo(shape: Tuple[int, int], row: np.ndarray, col: np.ndarray, data: np.ndarray) -> Any:
    """The COO matrix `csr.tocoo()` gives for these non-zeros (in CSR order, arrays of their own): scipy's
    attributes, in its order, without its constructor's checks (the non-zeros are in range by construction)."""
    from scipy.sparse import coo_matrix

    if max(shape) > _INT32_MAX:  # scipy's get_index_dtype(maxval=max(shape))
        row, col = row.astype(np.int64), col.astype(np.int64)
    matrix = object.__new__(coo_matrix)
    matrix.__dict__.update(_shape=shape, maxprint=_MAXPRINT, row=row, col=col, data=data, has_canonical_format=False)
    return matrix


def count_matrices(plan: _Plan, raw_tokens: Sequence[Text], process_tokens: Any) -> Tuple[Any, Any]:
    """The sequence (tokens x vocabulary) and sentence (1 x vocabulary) COO matrices of one text's tokens (at least
    one), as Rasa's `_create_features` makes them. `process_tokens` is the featurizer's own token processing
    (Rasa's `_process_tokens`)."""
    cache = plan.cache
    per_token = []
    for raw in raw_tokens:
        counts = cache.get(raw)
        if counts is None:
            counts = _counts(plan, process_tokens([raw])[0])
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            cache[raw] = counts
        per_token.append(counts)
    columns, values, repeated = zip(*per_token)
    lengths = [len(token_columns) for token_columns in columns]
    sequence_matrix = _coo((len(raw_tokens), plan.size), np.repeat(np.arange(len(raw_tokens), dtype=np.int32), lengths),
                           np.concatenate(columns), np.concatenate(values))
    # The joined text's features are the tokens' features in turn: its columns, and how often each occurs.
    sentence_columns, sentence_counts = np.unique(np.concatenate(repeated), return_counts=True)
    sentence_matrix = _coo((1, plan.size), np.zeros(len(sentence_columns), dtype=np.int32), sentence_columns,
                           sentence_counts.astype(plan.data_dtype))
    return sequence_matrix, sentence_matrix


def featurize_one(component: Any, message: Any) -> bool:
    """Adds `message`'s count features as Rasa's `process` does; False (nothing done) when Rasa's code must."""
    from rasa.nlu.constants import TOKENS_NAMES
    from rasa.shared.nlu.constants import TEXT

    plan = _plan(component)
    if plan is None:
        return False
    for attribute in component._attributes:
        if message.get(attribute) is None:
            continue  # Rasa: no tokens, so no features
        if attribute != TEXT:  # not in a parse: Rasa's own steps
            tokens = component._get_processed_message_tokens_by_attribute(message, attribute)
            sequence, sentence = component._create_features(attribute, [tokens])
            component.add_features_to_message(sequence[0], sentence[0], attribute, message)
            continue
        tokens = message.get(TOKENS_NAMES[TEXT])
        if not tokens:
            continue  # Rasa: nothing to featurize
        raw = [t.lemma for t in tokens] if component.use_lemma else [t.text for t in tokens]
        sequence_matrix, sentence_matrix = count_matrices(
            plan, raw, functools.partial(component._process_tokens, attribute=TEXT))
        component.add_features_to_message(sequence_matrix, sentence_matrix, TEXT, message)
    return True


def self_check() -> Optional[Text]:
    """None when matrices made here equal scikit-learn's and scipy's on a small vocabulary; else what differs."""
    from sklearn.feature_extraction.text import CountVectorizer

    texts = ["kahan hai", "order", "ok ok 👍", "__number__ aa", "zz"]
    for analyzer, ngrams in (("char_wb", (1, 4)), ("word", (1, 1))):
        vectorizer = CountVectorizer(analyzer=analyzer, ngram_range=ngrams, lowercase=True,
                                     token_pattern=RASA_TOKEN_PATTERN if analyzer == "word" else None)
        vectorizer.fit(texts[:4])
        tokens = " ".join(texts).split()
        expected_sequence = vectorizer.transform(tokens)
        expected_sequence.sort_indices()
        expected_sentence = vectorizer.transform([" ".join(tokens)])
        expected_sentence.sort_indices()
        plan = _Plan(vectorizer, ())
        got = count_matrices(plan, tokens, lambda ts: [t.lower() for t in ts])
        for name, want, have in (("sequence", expected_sequence.tocoo(), got[0]),
                                 ("sentence", expected_sentence.tocoo(), got[1])):
            difference = matrix_difference(want, have)
            if difference:
                return f"{analyzer} {name}: {difference}"
    return None


def matrix_difference(want: Any, have: Any) -> Optional[Text]:
    """None when `have` is `want` to the last attribute: class, attribute names in order, shapes, dtypes, values and
    array flags; else the first difference."""
    if type(want) is not type(have):
        return f"class {type(have).__name__} != {type(want).__name__}"
    if list(vars(want)) != list(vars(have)):
        return f"attributes {list(vars(have))} != {list(vars(want))}"
    for key, value in vars(want).items():
        other = vars(have)[key]
        if isinstance(value, np.ndarray):
            if not isinstance(other, np.ndarray) or other.dtype != value.dtype or other.shape != value.shape:
                return f"{key}: array {getattr(other, 'dtype', None)} {getattr(other, 'shape', None)} != {value.dtype} {value.shape}"
            if not np.array_equal(other, value):
                return f"{key}: values differ"
            for flag in ("C_CONTIGUOUS", "WRITEABLE", "OWNDATA", "ALIGNED"):
                if other.flags[flag] != value.flags[flag]:
                    return f"{key}: flag {flag}"
        elif type(other) is not type(value) or other != value or (
                isinstance(value, tuple) and [type(x) for x in value] != [type(x) for x in other]):
            return f"{key}: {other!r} != {value!r}"
    return None


def install() -> bool:
    """Installs the one-message path (once per process); False when the self-check fails (Rasa's code stays)."""
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer

    if getattr(CountVectorsFeaturizer, _INSTALLED_FLAG, False):
        return True
    problem = self_check()
    if problem is not None:
        logger.warning("CountVectorsFeaturizer keeps Rasa's own process: the self-check found %s", problem)
        return False
    shipped = CountVectorsFeaturizer.process

    @functools.wraps(shipped)
    def process(self: CountVectorsFeaturizer, messages: List[Any]) -> List[Any]:
        if len(messages) != 1 or not self.vectorizers or not featurize_one(self, messages[0]):
            return shipped(self, messages)
        return messages

    CountVectorsFeaturizer.process = process
    setattr(CountVectorsFeaturizer, _INSTALLED_FLAG, True)
    logger.debug("CountVectorsFeaturizer counts one message without building scipy matrices")
    return True
