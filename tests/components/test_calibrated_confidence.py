"""Calibrated intent confidence, trained on a small synthetic intent set (a library's help desk).

The components run as in a Rasa pipeline: WhitespaceTokenizer -> CountVectorsFeaturizer (char n-grams)
-> SentenceEmbeddingFeaturizer -> CalibratedIntentClassifier -> FallbackClassifier(threshold 0.6).
Nothing here uses the Kesar Lane intents: the components must learn everything from the data.
"""
from __future__ import annotations

from typing import Dict, List

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.calibrated_confidence import CALIBRATION_KEY, CalibratedIntentClassifier
from components.sentence_featurizer import SentenceEmbeddingFeaturizer

THRESHOLD = 0.6

LIBRARY_INTENTS: Dict[str, List[str]] = {
    "renew_loan": [
        "renew my books", "can i extend my loan", "please renew the novel i borrowed",
        "i need more time with my library books", "extend the due date on my books",
        "renew everything on my card", "can you renew my loans for two more weeks",
        "my books are due tomorrow, can i keep them longer", "how do i renew a book",
        "extend my borrowing period", "renew the cookbook i have", "i want to renew my loan",
    ],
    "book_study_room": [
        "book a study room for tomorrow", "reserve a group room at 3pm", "i need a quiet room to study",
        "can i reserve a meeting room for four people", "book the study room on friday morning",
        "is a study room free this afternoon", "reserve a room for our project group",
        "i'd like to book a silent study pod", "room booking for saturday please",
        "can i get a study room for two hours", "reserve the seminar room next week",
        "book me a room to revise in",
    ],
    "late_fees": [
        "how much is the late fine", "why do i have a fine on my account", "what are the overdue charges",
        "can you waive my late fee", "i was charged for returning a book late", "how do i pay my fine",
        "what is the penalty for overdue dvds", "my account shows an overdue fee",
        "do you charge fines for children's books", "how much do i owe in late fees",
        "pay library fine online", "is there a daily charge for late returns",
    ],
    "lost_card": [
        "i lost my library card", "my card was stolen", "how do i replace my library card",
        "can't find my membership card", "i need a new card, mine is lost", "block my lost card",
        "my library card is missing", "replacement card please", "what do i do if i lose my card",
        "my card got damaged, can i get another", "order a new library card", "lost membership card",
    ],
    "opening_hours": [
        "what time do you open", "are you open on sunday", "when does the library close today",
        "opening hours please", "is the library open on public holidays", "what are your hours",
        "until what time are you open tonight", "when do you open on saturday",
        "are you closed on mondays", "library timings", "what time does the branch open tomorrow",
        "is the library open late on thursdays",
    ],
    "donate_books": [
        "can i donate old books", "do you accept book donations", "i want to give away my novels",
        "where can i drop off donated books", "do you take used textbooks", "donate a box of books",
        "can i give my children's books to the library", "is there a book donation drive",
        "i have books to donate", "do you accept magazines as donations",
        "what books can i donate", "drop off donations at which branch",
    ],
}

IN_SCOPE_UNSEEN = [
    ("could you renew the two books i have out", "renew_loan"),
    ("i want to reserve a study room for thursday", "book_study_room"),
    ("how much do i have to pay for a late return", "late_fees"),
    ("i can't find my library card anywhere", "lost_card"),
    ("what time does the library open on sunday", "opening_hours"),
    ("can i donate some books i no longer need", "donate_books"),
]

UNRELATED = [
    "what's the weather like in lisbon tomorrow",
    "give me a recipe for banana bread",
    "who won the football match last night",
    "my car engine makes a rattling noise",
    "convert 100 dollars to euros",
    "play some jazz music",
]


def _context(node_name: str) -> ExecutionContext:
    return ExecutionContext(graph_schema=None, model_id="test", node_name=node_name)


class Pipeline:
    """The test pipeline; `classifier` can be swapped for a reloaded one."""

    def __init__(self, tmp_path, intents: Dict[str, List[str]], config=None, encoders=("all-MiniLM-L6-v2",)) -> None:
        self.storage = LocalModelStorage(tmp_path)
        self.resource = Resource("calibrated_intent_classifier")
        self.config = {**CalibratedIntentClassifier.get_default_config(), **(config or {})}
        self.tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
        self.char_counts = CountVectorsFeaturizer.create(
            {**CountVectorsFeaturizer.get_default_config(), "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
            self.storage, Resource("char_counts"), _context("char_counts"),
        )
        # One SentenceEmbeddingFeaturizer per encoder, in pipeline order (each one is a view).
        self.embedders = [
            SentenceEmbeddingFeaturizer(
                {**SentenceEmbeddingFeaturizer.get_default_config(), "model_name": encoder}, f"sentence_embedding_{i}"
            )
            for i, encoder in enumerate(encoders)
        ]
        self.classifier = CalibratedIntentClassifier.create(
            self.config, self.storage, self.resource, _context("calibrated")
        )
        self.fallback = FallbackClassifier(
            {**FallbackClassifier.get_default_config(), "threshold": THRESHOLD, "ambiguity_threshold": 0.1}
        )
        training = TrainingData(
            [Message(data={"text": text, "intent": intent}) for intent, texts in intents.items() for text in texts]
        )
        self.tokenizer.process_training_data(training)
        self.char_counts.train(training)
        self.char_counts.process_training_data(training)
        for embedder in self.embedders:
            embedder.process_training_data(training)
        self.classifier.train(training)

    def reload_classifier(self) -> None:
        self.classifier = CalibratedIntentClassifier.load(
            self.config, self.storage, self.resource, _context("calibrated")
        )

    def classify(self, text: str) -> Message:
        """The message as it leaves the calibrated classifier (before FallbackClassifier)."""
        messages = self.char_counts.process(self.tokenizer.process([Message(data={"text": text})]))
        for embedder in self.embedders:
            messages = embedder.process(messages)
        [message] = messages
        [message] = self.classifier.process([message])
        return message

    def final_intent(self, text: str) -> str:
        """The intent the dialogue would see (after FallbackClassifier)."""
        [message] = self.fallback.process([self.classify(text)])
        return message.get("intent")["name"]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Pipeline:
    return Pipeline(tmp_path_factory.mktemp("library"), LIBRARY_INTENTS)


@pytest.mark.parametrize("text, intent", IN_SCOPE_UNSEEN)
def test_unseen_in_scope_phrasing_is_answered(library, text, intent):
    message = library.classify(text)
    assert message.get("intent")["name"] == intent
    assert message.get("intent")["confidence"] >= THRESHOLD
    assert library.final_intent(text) == intent


@pytest.mark.parametrize("text", UNRELATED)
def test_unrelated_text_falls_below_the_threshold_and_is_handed_off(library, text):
    assert library.classify(text).get("intent")["confidence"] < THRESHOLD
    assert library.final_intent(text) == "nlu_fallback"


def test_unrelated_text_is_less_confident_than_any_in_scope_phrasing(library):
    lowest_in_scope = min(library.classify(text).get("intent")["confidence"] for text, _ in IN_SCOPE_UNSEEN)
    highest_unrelated = max(library.classify(text).get("intent")["confidence"] for text in UNRELATED)
    assert highest_unrelated < lowest_in_scope


def test_raw_classifier_confidence_stays_available_for_debugging(library):
    message = library.classify("what is the capital of peru")
    ranking = message.get("intent_ranking")
    calibration = message.get(CALIBRATION_KEY)
    assert ranking[0]["name"] == message.get("intent")["name"]
    assert ranking[0]["confidence"] == message.get("intent")["confidence"]
    assert all(0.0 <= entry["raw_confidence"] <= 1.0 for entry in ranking)
    assert calibration["raw_confidence"] == ranking[0]["raw_confidence"]
    # The softmax alone would have been far more sure of itself than the calibrated value.
    assert calibration["raw_confidence"] > message.get("intent")["confidence"]
    assert [entry["confidence"] for entry in ranking] == sorted((e["confidence"] for e in ranking), reverse=True)
    assert len(ranking) == len(LIBRARY_INTENTS)


def test_persisted_model_gives_the_same_answers_after_loading(tmp_path):
    pipeline = Pipeline(tmp_path, LIBRARY_INTENTS)
    texts = [text for text, _ in IN_SCOPE_UNSEEN] + UNRELATED
    before = [(m.get("intent"), m.get("intent_ranking")) for m in map(pipeline.classify, texts)]
    pipeline.reload_classifier()
    after = [(m.get("intent"), m.get("intent_ranking")) for m in map(pipeline.classify, texts)]
    # The same intents in the same order with the same confidences, to the last few bits: loading limits the BLAS
    # threads for serving (components/serving_threads.py), and on some CPUs (AVX-512 OpenBLAS kernels) a product
    # summed by one thread instead of two differs in its last bit.
    assert [[entry["name"] for entry in ranking] for _, ranking in after] == [
        [entry["name"] for entry in ranking] for _, ranking in before]
    for (intent_after, ranking_after), (intent_before, ranking_before) in zip(after, before):
        assert intent_after["name"] == intent_before["name"]
        assert intent_after["confidence"] == pytest.approx(intent_before["confidence"], rel=1e-12, abs=1e-15)
        for entry_after, entry_before in zip(ranking_after, ranking_before):
            assert entry_after["confidence"] == pytest.approx(entry_before["confidence"], rel=1e-12, abs=1e-15)
            assert entry_after["raw_confidence"] == pytest.approx(entry_before["raw_confidence"], rel=1e-12, abs=1e-15)


def test_a_model_loaded_for_serving_runs_blas_on_one_thread(tmp_path, monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from components import serving_threads

    for name in (*serving_threads.OPERATOR_SETTINGS, serving_threads.LIMIT_ENV):
        monkeypatch.delenv(name, raising=False)
    pipeline = Pipeline(tmp_path, LIBRARY_INTENTS)
    with threadpool_limits(limits=2, user_api="blas"):  # restored afterwards
        pipeline.reload_classifier()
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}


def test_untrained_model_leaves_messages_alone(tmp_path):
    storage = LocalModelStorage(tmp_path)
    loaded = CalibratedIntentClassifier.load(
        CalibratedIntentClassifier.get_default_config(), storage, Resource("never_trained"), _context("c")
    )
    [message] = loaded.process([Message(data={"text": "hello"})])
    assert message.get("intent") is None


def test_works_with_any_intent_names(tmp_path):
    renamed = {name: f"Zweck {index} / ärger-{name[::-1]}" for index, name in enumerate(LIBRARY_INTENTS)}
    pipeline = Pipeline(tmp_path, {renamed[name]: texts for name, texts in LIBRARY_INTENTS.items()})
    for text, intent in IN_SCOPE_UNSEEN:
        assert pipeline.final_intent(text) == renamed[intent]
    for text in UNRELATED:
        assert pipeline.final_intent(text) == "nlu_fallback"


def test_two_intents_with_the_same_phrasing_are_reported_as_ambiguous(tmp_path):
    intents = dict(LIBRARY_INTENTS)
    # A copy of an intent under another name: the classifier cannot tell them apart.
    intents["extend_loan"] = list(intents["renew_loan"])
    pipeline = Pipeline(tmp_path, intents)
    text = "could you renew the two books i have out"
    ranking = pipeline.classify(text).get("intent_ranking")
    assert {ranking[0]["name"], ranking[1]["name"]} == {"renew_loan", "extend_loan"}
    assert pipeline.final_intent(text) == "nlu_fallback"
    assert pipeline.final_intent("i lost my library card yesterday") == "lost_card"


@pytest.mark.parametrize(
    "bad_config",
    [{"in_scope_coverage": 1.0}, {"threshold": 1.5}, {"folds": 1}, {"evidence": ["vibes"]}],
)
def test_invalid_config_is_rejected_when_the_pipeline_is_built(tmp_path, bad_config):
    with pytest.raises(InvalidConfigException):
        CalibratedIntentClassifier.create(
            {**CalibratedIntentClassifier.get_default_config(), **bad_config},
            LocalModelStorage(tmp_path), Resource("bad"), _context("bad"),
        )


def test_a_second_sentence_encoder_is_used_as_a_second_view(tmp_path):
    from components.use_encoder import USE_MODEL_NAME

    pipeline = Pipeline(tmp_path, LIBRARY_INTENTS, encoders=("all-MiniLM-L6-v2", USE_MODEL_NAME))
    assert pipeline.classifier._model.n_views == 2
    for text, intent in IN_SCOPE_UNSEEN:
        assert pipeline.final_intent(text) == intent
    for text in UNRELATED:
        assert pipeline.final_intent(text) == "nlu_fallback"
    pipeline.reload_classifier()
    assert pipeline.final_intent(IN_SCOPE_UNSEEN[0][0]) == IN_SCOPE_UNSEEN[0][1]
