"""The KnowledgeBase API: schema checks with clear errors, retrieval that benchmarks can use, and an
answer probability that answers what an entry covers and hands off what it does not."""
from __future__ import annotations

import dataclasses
import re
import textwrap

import pytest
import yaml

from actions.embedding_cache import CACHE_ENV, DEFAULT_DIRECTORY, EmbeddingCache
from actions.knowledge_base import KnowledgeBase, KnowledgeBaseError, copy_knowledge_base, gloss, linked_files
from actions.settings import PROJECT_ROOT


def write(tmp_path, text):
    path = tmp_path / "kb.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_kb_has_14_complete_entries(kb):
    assert len(kb.entries) == 14
    for entry in kb.entries:
        assert len(entry.questions) >= 30, entry.id  # the entry classifier learns from them
        assert entry.not_covered, entry.id
        assert entry.active and entry.answer.strip()


def test_search_ranks_best_first_with_probabilities(kb):
    results = kb.search("what is the size chart, i have a 36 inch chest", k=3)
    assert [entry_id for entry_id, _ in results][0] == "sizing"
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert len(results) == 3


# Written for these tests (not taken from bench/data): a customer's wording of what an entry says.
@pytest.mark.parametrize("question, entry_id", [
    ("do you guys have cash on delivery option", "cash_on_delivery"),
    ("how many days does shipping take to lucknow", "shipping"),
    ("what is the chest size of a medium", "sizing"),
    ("how do i become a kesar circle vip", "loyalty_vip"),
    # WhatsApp spellings: Hinglish, dropped letters (the character n-grams of the classifier)
    ("cash on delivry milta hai kya", "cash_on_delivery"),
    ("trackin link kaha hai", "order_tracking"),
    ("exchnge krna hai size ka", "exchanges"),
    ("size kitna lena chahiye 38 chest hai", "sizing"),
    ("paise wapas kab milenge return ke", "returns"),
    # Hinglish written in session 10 (words such as "thok" came into the entries then)
    ("dhone ke baad kapda chota hoga kya", "care_washing"),
    ("cancel kaise karu order dispatch se pehle", "cancellation"),
    ("points ka kya fayda hai, kitne pe kitna milta hai", "loyalty_vip"),
    ("thok mein kurte chahiye shaadi ke liye, minimum kitne", "bulk_orders"),
])
def test_answerable_question_is_answered_with_its_entry(kb, config, question, entry_id):
    match = kb.best_match(question)
    assert match.entry_id == entry_id
    assert match.probability >= config.kb_answer_threshold


# The questions of BEHAVIOUR's follow-ups and negations, as the NLU leaves them for the knowledge base
# (it cuts off "ok and", "aur", "one more thing -" and a declined "agent nahi chahiye,").
@pytest.mark.parametrize("question, entry_id", [
    ("can I return it if it doesn't fit?", "returns"),
    ("exchange kaise hota hai?", "exchanges"),
    ("bas return policy batao", "returns"),
    ("only tell me COD charges", "cash_on_delivery"),
    ("how do I pick my size?", "sizing"),
    ("is it vegan?", "ingredients"),
    ("delivery kitne din mein?", "shipping"),
    ("what about COD?", "cash_on_delivery"),
])
def test_follow_up_and_negation_questions_get_their_answer(kb, config, question, entry_id):
    match = kb.best_match(question)
    assert (match.entry_id, match.probability >= config.kb_answer_threshold) == (entry_id, True)


@pytest.mark.parametrize("question", [
    "what's the GST registration number of your company?",  # issue 12: got the pricing entry at 0.557
    "do you have a physical store in pune",
    "how do i reset my password",
    "how much does the linen kurta cost",  # a not_covered example of pricing_offers
    "what's the weather in mumbai today",  # a question of the near-miss file
    # near-topic, written for this test: a detail no answer gives, one order's own change
    "does the anarkali have a side zip",
    "mere order ka gift message badalna hai",
    # session 28: what happens when the exchange size is out of stock is not in the answer ("subject to stock")
    # session 48: v54's "swap to L possible?" (an exchanges answer) in the labelled data put this wording at 0.73. Four
    # `not_covered` questions of a swap into a sold-out size brought it to 0.30 but pushed the fragment "the ceiling on
    # it" after the COD answer over the near-miss share limit (0.758 against 0.75; test_fallback_follow_ups), so they
    # were not kept: which way to trade is for the used-up sets to decide. Strict: this fails once it is fixed.
    pytest.param("the size i asked to swap to is sold out now, what happens",
                 marks=pytest.mark.xfail(strict=True, reason="answered from exchanges since v54 joined the labelled data")),
    "exchange ke liye mera size stock mein hi nahi hai, ab?",
])
def test_near_miss_is_handed_off(kb, config, question):
    assert kb.best_match(question).probability < config.kb_answer_threshold


# Failed from session 10 ('lautana', return, landed on the exchanges entry above the threshold) until the
# retired TEST sets became training data in session 13.
def test_hinglish_return_window_question_gets_the_returns_answer(kb, config):
    match = kb.best_match("kurta lautane ke kitne din milte hai")
    assert match.entry_id == "returns" or match.probability < config.kb_answer_threshold


def test_adding_the_customers_question_as_not_covered_stops_that_answer(kb, config):
    # The shipping answer says how long delivery usually takes, not whether the rains slow it down. The KB's
    # header says what to do when an answer did not fit: add the customer's question, in their words, to the
    # entry's `not_covered`. (Until session 31 one rewording stopped it too; with the used-up conversations'
    # shipping questions learnt, a rewording brings it from 0.996 to 0.83 only, the question itself to 0.05.)
    question = "does shipping to chennai take longer in the monsoon"
    wrong = kb.best_match(question)
    assert wrong.entry_id == "shipping" and wrong.probability >= config.kb_answer_threshold
    entries = [
        dataclasses.replace(e, not_covered=e.not_covered + (question,)) if e.id == "shipping" else e
        for e in kb.entries
    ]
    edited = KnowledgeBase.from_entries(entries, encoder=kb._encoder, near_misses=kb.near_misses)
    assert edited.best_match(question).probability < config.kb_answer_threshold
    assert edited.best_match("how many days does shipping take to lucknow").probability >= config.kb_answer_threshold


def test_held_out_paraphrases_mostly_find_their_entry(kb):
    paraphrases = yaml.safe_load((PROJECT_ROOT / "bench/data/kb_paraphrases.yml").read_text())["paraphrases"]
    hits = sum(kb.search(p["text"], k=1)[0][0] == p["entry_id"] for p in paraphrases)
    # 0.857 with nearest-neighbour cosine, 0.988 with the entry classifier (issue 12)
    assert hits / len(paraphrases) >= 0.95, f"top-1 retrieval {hits}/{len(paraphrases)}"


def test_empty_query_finds_nothing(kb):
    assert kb.search("   ") == []


def test_inactive_entries_are_never_returned(tmp_path, kb):
    path = write(tmp_path, """
        entries:
          - id: returns
            title: Returns
            answer: Free returns within 14 days.
            questions: [can I return it, can i send it back]
            not_covered: [can i return it in a store]
          - id: shipping
            title: Shipping
            answer: 4-7 days.
            questions: [how long is delivery]
            active: false
    """)
    small = KnowledgeBase.from_yaml(path, encoder=kb._encoder)
    assert [entry_id for entry_id, _ in small.search("how long is delivery", k=5)] == ["returns"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("entries: nope", "expected a mapping with an `entries:` list"),
        ("entries:\n  - id: Bad Id\n    title: t\n    answer: a\n    questions: [q]", "snake_case"),
        ("entries:\n  - id: a\n    title: t\n    answer: ''\n    questions: [q]", "`answer` must be a non-empty string"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: []", "`questions` must be a non-empty list"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]\n    link: kesarlane.in", "http(s) URL"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]\n  - id: a\n    title: t\n    answer: x\n    questions: [q]", "duplicate entry id 'a'"),
        ("entries: [", "not valid YAML"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]\n    not_covered: a question",
         "entry 'a': `not_covered` must be a list of non-empty strings"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]\n    not_covered: ['']",
         "`not_covered` must be a list of non-empty strings"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q, r]\n  - id: b\n    title: t\n"
         "    answer: x\n    questions: [s]\n    not_covered: ['  R ']",
         "entry 'b': not_covered question 'R' is also a question of entry 'a'"),
        ("near_misses: 3\nentries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]",
         "`near_misses` must be a file name"),
        ("near_misses: missing.yml\nentries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]",
         "near-miss file not found"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q, r]",
         "near misses no entry answers (found 0)"),
    ],
)
def test_schema_errors_say_what_and_where(tmp_path, kb, body, message):
    with pytest.raises(KnowledgeBaseError, match=re.escape(message)):
        KnowledgeBase.from_yaml(write(tmp_path, body), encoder=kb._encoder)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="not found"):
        KnowledgeBase.from_yaml(tmp_path / "missing.yml")


def test_near_miss_file_must_list_questions(tmp_path, kb):
    (tmp_path / "near.yml").write_text("questions: can i visit your office\n", encoding="utf-8")
    path = write(tmp_path, """
        near_misses: near.yml
        entries:
          - id: a
            title: t
            answer: x
            questions: [q, r]
    """)
    with pytest.raises(KnowledgeBaseError, match=r"near.yml: `questions` must be a list of non-empty strings"):
        KnowledgeBase.from_yaml(path, encoder=kb._encoder)


class CountingEncoder:
    """The real encoder, remembering which texts it was asked to embed."""

    def __init__(self, encoder):
        self.encoder, self.embedded = encoder, []

    def encode(self, texts, **options):
        self.embedded += list(texts)
        return self.encoder.encode(texts, **options)


SMALL_KB = """
    entries:
      - id: returns
        title: Returns
        answer: Free returns within 14 days of delivery.
        questions: [can I return it, can i send it back, return policy kya hai]
        not_covered: [can i return it in a store]
      - id: shipping
        title: Shipping
        answer: Delivery takes 4-7 days.
        questions: [how long is delivery, when will my parcel come, {shipping_question}]
"""


def small_kb(tmp_path, encoder, cache, shipping_question="delivery kitne din mein"):
    path = write(tmp_path, SMALL_KB.format(shipping_question=shipping_question))
    return KnowledgeBase.from_yaml(path, encoder=encoder, embedding_cache=cache)


def test_a_restart_reads_embeddings_from_the_cache_and_answers_the_same(tmp_path, kb):
    cache = EmbeddingCache(tmp_path / "cache")
    first = small_kb(tmp_path, CountingEncoder(kb._encoder), cache)
    restarted_encoder = CountingEncoder(kb._encoder)
    restarted = small_kb(tmp_path, restarted_encoder, cache)
    uncached = small_kb(tmp_path, kb._encoder, None)
    assert restarted_encoder.embedded == []
    for question in ("can i send back my kurta", "how many days for delivery"):
        assert restarted.search(question) == first.search(question) == uncached.search(question)


def test_an_edited_question_is_embedded_again(tmp_path, kb):
    cache = EmbeddingCache(tmp_path / "cache")
    small_kb(tmp_path, CountingEncoder(kb._encoder), cache)
    encoder = CountingEncoder(kb._encoder)
    edited = small_kb(tmp_path, encoder, cache, shipping_question="parcel kab aayega")
    assert encoder.embedded == ["parcel kab aayega"]
    assert edited.best_match("parcel kab aayega").entry_id == "shipping"


@pytest.mark.parametrize("damage", [b"", b"not a numpy file", b"PK\x03\x04 cut short"])
def test_a_corrupt_cache_file_is_embedded_again_and_rewritten(tmp_path, kb, damage):
    cache = EmbeddingCache(tmp_path / "cache")
    reference = small_kb(tmp_path, CountingEncoder(kb._encoder), cache)
    cache_file = next((tmp_path / "cache").glob("*.npz"))
    cache_file.write_bytes(damage)
    encoder = CountingEncoder(kb._encoder)
    recovered = small_kb(tmp_path, encoder, cache)
    assert "can I return it" in encoder.embedded
    assert recovered.search("can i send back my kurta") == reference.search("can i send back my kurta")
    again = CountingEncoder(kb._encoder)
    small_kb(tmp_path, again, cache)
    assert again.embedded == []  # the file was rewritten whole


def test_cache_location_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))
    assert EmbeddingCache.from_environment().directory == tmp_path / "elsewhere"
    monkeypatch.setenv(CACHE_ENV, "off")
    assert EmbeddingCache.from_environment() is None
    monkeypatch.delenv(CACHE_ENV)
    assert EmbeddingCache.from_environment().directory == DEFAULT_DIRECTORY


# Topic words: what tells a follow-up that names another entry's subject from one that leans on the
# answer just given (actions/answers.py, elliptical follow-ups).
@pytest.mark.parametrize(
    "text, named",
    [
        ("aur cod milta hai?", ["cash_on_delivery"]),
        ("any coupon code right now", ["pricing_offers"]),
        ("how do I wash it", ["care_washing"]),
        ("kitne din tak?", []),
        ("is it free?", []),
        ("how many days do i get for this", []),
    ],
)
def test_topics_named_are_the_entries_a_message_names(kb, text, named):
    assert kb.topics_named(text) == named


def test_the_previous_entry_is_never_named_as_another_topic(kb):
    assert kb.topics_named("exchange kaise karu", besides="exchanges") == []
    assert kb.topics_named("exchange kaise karu") == ["exchanges"]


def test_topic_words_need_one_entry_to_use_them_far_more_than_any_other():
    from actions.kb_answerability import NONE, topic_words

    texts = ["cod available?", "cod charges", "is cod there", "cod fee", "size chart", "size for chest 38",
             "which size", "size help", "is it there", "fee for size exchange", "cod store in pune"]
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, NONE]
    words = topic_words(texts, labels, 2)
    assert words["cod"] == 0 and words["size"] == 1
    # "fee": once in each entry, "there": in both; the near miss's "store" belongs to no entry
    assert "fee" not in words and "there" not in words and "store" not in words


# Labelled sets (`labelled_sets:`): retired benchmark TEST sets become training data by being listed.
LABELLED_KB = "    labelled_sets: [labelled/set.yml]" + SMALL_KB.format(shipping_question="delivery kitne din mein") + """
      - id: gift_wrap
        title: Gift wrap
        answer: Gift wrapping is free.
        questions: [do you gift wrap, can it be packed as a gift]
        active: false
"""


def labelled(tmp_path, body):
    (tmp_path / "labelled").mkdir(exist_ok=True)
    (tmp_path / "labelled" / "set.yml").write_text(textwrap.dedent(body), encoding="utf-8")
    return write(tmp_path, LABELLED_KB)


def test_a_labelled_set_adds_questions_to_its_entries_and_near_misses(tmp_path, kb):
    path = labelled(tmp_path, """
        paraphrases:
          - {text: "wapas bhej sakte hai kya", entry_id: returns}
          - {text: "parcel kitne din me aata hai", entry_id: shipping}
          - {text: "gift pack milega", entry_id: gift_wrap}
        unanswerable:
          - do you have a store in pune
    """)
    loaded = KnowledgeBase.from_yaml(path, encoder=kb._encoder, embedding_cache=None)
    assert loaded.entry("returns").labelled == ("wapas bhej sakte hai kya",)
    assert loaded.entry("shipping").labelled == ("parcel kitne din me aata hai",)
    assert "wapas bhej sakte hai kya" not in loaded.entry("returns").questions  # the designer's list, as written
    assert loaded.entry("gift_wrap").labelled == ()  # hidden with its entry
    assert loaded.best_match("wapas bhej sakte hai kya").entry_id == "returns"
    assert "do you have a store in pune" in loaded.near_misses


@pytest.mark.parametrize(
    "body, message",
    [
        ("paraphrases:\n  - {text: 'kab tak aayega', entry_id: delivery}",
         "set.yml: paraphrase 1 ('kab tak aayega') names entry 'delivery', which the knowledge base does not have"),
        ("paraphrases:\n  - kab tak aayega", "set.yml: paraphrase 1 must be {text: ..., entry_id: ...}"),
        ("unanswerable: do you have a store", "set.yml: `unanswerable` must be a list of non-empty strings"),
        ("unanswerable: ['How long is  delivery']",
         "set.yml: unanswerable 'How long is  delivery' is also a question of entry 'shipping'"),
        ("paraphrases:\n  - {text: 'Can I return it in a store', entry_id: returns}",
         "set.yml: paraphrase 'Can I return it in a store' of entry 'returns' is also a question no entry answers"),
        ("questions: [a, b]", "set.yml: expected a mapping with `paraphrases:` and/or `unanswerable:`"),
    ],
)
def test_labelled_set_errors_name_the_file_and_the_item(tmp_path, kb, body, message):
    with pytest.raises(KnowledgeBaseError, match=re.escape(message)):
        KnowledgeBase.from_yaml(labelled(tmp_path, body), encoder=kb._encoder, embedding_cache=None)


def test_a_missing_labelled_set_is_a_clear_error(tmp_path, kb):
    with pytest.raises(KnowledgeBaseError, match="labelled set not found: .*set.yml"):
        KnowledgeBase.from_yaml(write(tmp_path, LABELLED_KB), encoder=kb._encoder, embedding_cache=None)


def test_labelled_sets_must_be_a_list_of_file_names(tmp_path, kb):
    path = write(tmp_path, LABELLED_KB.replace("labelled_sets: [labelled/set.yml]", "labelled_sets: labelled/set.yml"))
    with pytest.raises(KnowledgeBaseError, match="`labelled_sets` must be a list of file names"):
        KnowledgeBase.from_yaml(path, encoder=kb._encoder, embedding_cache=None)


def test_a_copy_of_the_shipped_kb_takes_the_files_it_names(tmp_path):
    copy = copy_knowledge_base(PROJECT_ROOT / "data" / "knowledge_base.yml", tmp_path / "copy")
    named = linked_files(yaml.safe_load(copy.read_text(encoding="utf-8")), copy)
    # near misses, glossary, 45 retired TEST sets and the used-up conversations' KB turns
    assert len(named) == 48 and all(path.is_file() for path in named)
    assert {path.name for path in named} >= {"kb_near_misses.yml", "kb_test_v3.yml", "conversations.yml"}


# The glossary (`glossary:`, data/kb_glossary.yml): customers' words and their English meaning, read into every text.
def test_gloss_adds_each_meaning_once_after_the_text_and_matches_whole_words_only():
    glossary = {"naap": "size measurement", "bada": "big large", "kitne": "how many"}
    assert gloss("Naap kitne ka hai, naap?", glossary) == "Naap kitne ka hai, naap? | size measurement how many"
    assert gloss("size badal sakte hai", glossary) == "size badal sakte hai"  # "bada" is not inside "badal"
    assert gloss("how long is delivery", glossary) == "how long is delivery"
    assert gloss("naap", {}) == "naap"


@pytest.mark.parametrize("body, message", [
    ("words: []", "expected a mapping with a non-empty `words:` mapping"),
    ("entries: {naap: size}", "expected a mapping with a non-empty `words:` mapping"),
    ("words: {Naap: size}", "'Naap' must be one lower-case word of letters a-z"),
    ("words: {kitne din: how many days}", "'kitne din' must be one lower-case word of letters a-z"),
    ("words: {naap: ''}", "the meaning of 'naap' must be non-empty text"),
    ("words: {naap: [size]}", "the meaning of 'naap' must be non-empty text"),
])
def test_glossary_errors_name_the_file_and_the_word(tmp_path, kb, body, message):
    (tmp_path / "glossary.yml").write_text(body + "\n", encoding="utf-8")
    path = write(tmp_path, "    glossary: glossary.yml" + SMALL_KB.format(shipping_question="delivery kitne din mein"))
    with pytest.raises(KnowledgeBaseError, match=re.escape("glossary.yml: " + message)):
        KnowledgeBase.from_yaml(path, encoder=kb._encoder, embedding_cache=None)


def test_a_glossary_word_teaches_the_knowledge_base_what_a_hinglish_question_asks(tmp_path, kb):
    (tmp_path / "glossary.yml").write_text("words:\n  lautana: return send back\n", encoding="utf-8")
    with_glossary = KnowledgeBase.from_yaml(
        write(tmp_path, "    glossary: glossary.yml" + SMALL_KB.format(shipping_question="delivery kitne din mein")),
        encoder=kb._encoder, embedding_cache=None)
    without = small_kb(tmp_path, kb._encoder, None)
    question = "kurta lautana ho to?"  # "lautana" (to return) is in no question of the small knowledge base
    assert with_glossary.best_match(question).entry_id == "returns"
    assert with_glossary.search(question, k=1)[0][1] > without.search(question, k=1)[0][1]
    assert with_glossary.glossary == {"lautana": "return send back"} and without.glossary == {}


def test_the_shipped_glossary_lists_only_lower_case_words_and_no_english_look_alikes(kb):
    assert len(kb.glossary) >= 150
    assert not {"band", "tel", "pata", "nap", "order", "free"} & set(kb.glossary)


# Class balance (actions/kb_answerability.py CLASS_BALANCE, session 32): with hundreds of examples per established
# entry (the used-up conversations), a designer's new entry with a handful of questions must still be learnt
# (end to end: tests/actions/test_kb_live.py, an entry with five questions added live and answered).
def test_an_entry_with_few_examples_weighs_more_and_near_misses_weigh_one():
    import numpy as np

    from actions.kb_answerability import NONE, balance_weights

    labels = np.array([0] * 400 + [1] * 100 + [2] * 4 + [NONE] * 50)
    weights = balance_weights(labels, balance=0.5)
    assert weights[labels == 2][0] == pytest.approx((100 / 4) ** 0.5)  # the median entry has 100 examples
    assert set(weights[labels == 0]) == {1.0} and set(weights[labels == 1]) == {1.0}  # never below 1
    assert set(weights[labels == NONE]) == {1.0}
    assert balance_weights(labels, balance=0) is None  # off: sklearn's plain fit

