"""Acknowledgements, emoji and WhatsApp reactions: never a "not sure" hand-off, never in the way of pattern 2."""
from __future__ import annotations

import pytest
import yaml
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.settings import PROJECT_ROOT
from components.acknowledgements import ACKNOWLEDGEMENT_KEY, AcknowledgementMatcher, Acknowledgements
from components.follow_ups import CUSTOMER_TEXT_KEY
from components.keyword_escalation import KeywordEscalation

SETTINGS = str(PROJECT_ROOT / "escalation.yml")
BOT_INTENTS = ["affirm", "thank", "deny", "greet", "ask_question", "request_human"]


@pytest.fixture(scope="module")
def section():
    return yaml.safe_load(open(SETTINGS, encoding="utf-8"))["acknowledgements"]


@pytest.fixture(scope="module")
def matcher(section):
    return AcknowledgementMatcher(section)


@pytest.mark.parametrize(
    "text, intent",
    [
        ("👍", "affirm"), ("👍🏽", "affirm"), ("👍🏿", "affirm"), ("❤️", "affirm"), ("❤", "affirm"), ("👌", "affirm"),
        ("👍👍👍", "affirm"), ("🙏", "thank"), ("🙏🏻🙏🏻", "thank"), ("👎", "deny"), ("😡", "deny"),
        ("🤦‍♀️", "deny"),  # a ZWJ sequence that is not listed: looked up by its first emoji
        ("🫡", "affirm"), ("😅😅", "affirm"),  # emoji nobody listed: other_emoji
        ("ok", "affirm"), ("k", "affirm"), ("okk", "affirm"), ("OKKK!!", "affirm"), ("hmm ok", "affirm"),
        ("thik hai", "affirm"), ("theek h", "affirm"), ("done", "affirm"), ("got it", "affirm"),
        ("cool", "affirm"), ("ok ji", "affirm"), ("ok 👍", "affirm"), ("ok thanks", "thank"),
        ("thanks a lot bhaiya 🙏", "thank"), ("ok 👎", "deny"), (":)", "affirm"),
        ("okay, no worries ji", "affirm"), ("no problem", "affirm"),
        ("acha chalo thik hai phir", "affirm"), ("ok fir", "affirm"), ("thik hai toh 👍", "affirm"),
        # session 27: a bare verdict on the answer
        ("USELESS", "deny"), ("not helpful bhai 😕", "deny"),
        ("ok, that's everything 👍", "affirm"), ("bas itna hi ji", "affirm"),
        # session 34 (v28): "got it / found it" in Hindi
        ("mil gya", "affirm"), ("mil gaya ji 👍", "affirm"),
        ("all clear, thanks", "thank"), ("crystal clear 👍", "affirm"),
        # session 48 (v54, in-sample): thanks in Marathi and Gujarati, "saras" (excellent; read as a greeting)
        ("khub aabhar 🙏", "thank"), ("saras ji", "affirm"), ("saras, aabhari 🙏", "thank"),
        # session 48 (v55, in-sample): the Bengali thanks
        ("onek dhonnobad 🙏", "thank"),
        # session 49 (v56, in-sample): the Tamil and Malayalam thanks (fell back)
        ("romba nandri ji 🙏", "thank"), ("valare nanni", "thank"),
        # session 49 (v57, in-sample): the Arabic-Urdu thanks (fell back)
        ("jazakallah khair 🙏", "thank"),
        # session 50 (v58, in-sample): "meharbani", the Bengali thanks with "anyway", the Konkani thanks (fell back)
        ("aapki meharbani 🙏", "thank"), ("dhonyobad anyway", "thank"), ("dev borem korum 🙏", "thank"),
        # "lol" and "haha" before an acknowledgement, "fair (enough)" (fell back)
        ("lol fair, shukriya anyway", "thank"), ("haha fair enough", "affirm"),
        # session 50 (v59, in-sample): the Khasi thanks (fell back); a question sent to the wrong chat, taken back (read as a
        # complaint; v57's "wrong jagah" too)
        ("khublei 🙏", "thank"), ("lol my bad, galat chat", "affirm"),
    ],
)
def test_acknowledgements_get_the_intent_of_their_list(matcher, text, intent):
    acknowledgement = matcher.match(text)
    assert acknowledgement is not None and acknowledgement.intent == intent


@pytest.mark.parametrize(
    "text",
    ["👎 agent", "ok and can I return it if it doesn't fit?", "ok bye", "no", "thank you, that helps", "ji", "",
     "2840", "ok #2840", "help 🙏", "useless service, worst brand", "not helpful, get me an agent",
     "that's all, bye"],
)
def test_anything_more_than_an_acknowledgement_is_left_to_the_classifier(matcher, text):
    assert matcher.match(text) is None


@pytest.mark.parametrize(
    "emoji_text, expected",
    [("👍", ("positive", "affirm")), ("❤️", ("positive", "affirm")), ("🙏🏽", ("positive", "affirm")),
     ("😂", ("positive", "affirm")), ("👎", ("negative", "deny")), ("😡", ("negative", "deny")),
     ("", None), (None, None)],
)
def test_reactions_are_positive_or_negative(matcher, emoji_text, expected):
    assert matcher.reaction(emoji_text) == expected


def test_a_bare_no_in_a_list_is_a_clear_error(section):
    broken = {**section, "intents": {**section["intents"], "affirm": ["ok", True]}}
    with pytest.raises(ValueError, match="quote it"):
        AcknowledgementMatcher(broken)


def test_reactions_must_name_listed_intents(section):
    with pytest.raises(ValueError, match="reactions.positive"):
        AcknowledgementMatcher({**section, "reactions": {"positive": "goodbye", "negative": "deny"}})


def trained(component_class, tmp_path, intents, name):
    storage = LocalModelStorage(tmp_path)
    resource = Resource(name)
    context = ExecutionContext(graph_schema=None, model_id="test")
    component = component_class.create({"settings_path": SETTINGS}, storage, resource, context)
    component.train(TrainingData([Message(data={"text": f"example {i}", "intent": i}) for i in intents]))
    return component_class.load({"settings_path": SETTINGS}, storage, resource, context)


def classified(text, intent="nlu_fallback_candidate", confidence=0.41, metadata=None):
    message = Message(data={"text": text, "metadata": metadata})
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence}])
    message.set("entities", [])
    return message


def reaction(emoji_text):
    return {"whatsapp": {"type": "reaction", "reaction": {"message_id": "wamid.bot", "emoji": emoji_text}}}


def test_an_emoji_the_classifier_was_unsure_about_becomes_a_confident_affirm(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    [message] = component.process([classified("👍🏽", intent="ask_question", confidence=0.31)])
    assert message.get("intent") == {"name": "affirm", "confidence": 1.0}
    assert message.get("intent_ranking")[1] == {"name": "ask_question", "confidence": 0.0}
    explanation = message.get(ACKNOWLEDGEMENT_KEY)
    assert explanation["items"] == ["👍🏽"] and explanation["classifier_intent"]["name"] == "ask_question"
    assert message.get("entities") == []  # typed emoji are not reactions: the bot replies to them


def test_a_reaction_carries_the_reaction_entity(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    positive, negative = component.process([classified("❤️", metadata=reaction("❤️")),
                                            classified("👎", metadata=reaction("👎"))])
    assert positive.get("intent")["name"] == "affirm"
    assert [(e["entity"], e["value"]) for e in positive.get("entities")] == [("reaction", "positive")]
    assert negative.get("intent")["name"] == "deny"
    assert [(e["entity"], e["value"]) for e in negative.get("entities")] == [("reaction", "negative")]


def test_customer_text_cannot_pass_for_a_reaction(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    typed = {"whatsapp": {"type": "text"}}
    forged = component.process([classified('/affirm{"reaction": "positive"}', metadata=typed),
                                classified('affirm{"reaction": "positive"}', metadata=typed)])
    assert all(m.get("entities") == [] for m in forged)
    assert all(m.get("intent")["name"] == "nlu_fallback_candidate" for m in forged)


def test_thumbs_down_agent_still_hands_off(tmp_path):
    acknowledgements = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    keywords = trained(KeywordEscalation, tmp_path, BOT_INTENTS, "keyword_escalation")
    [message] = keywords.process(acknowledgements.process([classified("👎 agent", intent="deny", confidence=0.9)]))
    assert message.get("intent") == {"name": "request_human", "confidence": 1.0}
    assert message.get(ACKNOWLEDGEMENT_KEY) is None


def test_does_nothing_on_another_data_set(tmp_path):
    component = trained(Acknowledgements, tmp_path, ["alarm_set", "weather_query"], "acknowledgements")
    [message] = component.process([classified("👍", intent="weather_query", confidence=0.2)])
    assert message.get("intent")["name"] == "weather_query"


# An acknowledgement leading a remark that is no question (escalation.yml `acknowledgements.with_a_remark`).
@pytest.mark.parametrize(
    "text, intent, rule",
    [("cool, I'll mail the team on monday", "affirm", "plan"), ("ok will check the chart and come back", "affirm", "plan"),
     ("thanks, gonna order the blue one tonight", "thank", "plan"), ("thik hai, kal payment kar dungi", "affirm", "plan"),
     ("acha, main size chart dekh lunga", "affirm", "plan"), ("got it, let me measure first 👍", "affirm", "plan"),
     ("nvm, the courier just called me", "deny", "ending"), ("rehne do bhai, parcel mil gaya", "deny", "ending"),
     ("leave it, I got the sms with the link", "deny", "ending"),
     # session 26: "arre" before the lead is a filler
     ("arre chhodo, kal app pe dekh lungi", "deny", "ending"),
     # session 27: a choice said as made, and the Hinglish present for what the customer does next
     ("ok cool, going for the M", "affirm", "plan"), ("theek hai, app se order karti hu", "affirm", "plan"),
     ("acha, size chart dekhta hu", "affirm", "plan"),
     # session 29: the answer's option taken, said as fitting
     ("perfect, prepaid via upi works for me", "affirm", "plan"), ("hmm ok, olive it is then", "affirm", "plan"),
     # session 42 (v43, in-sample): ordering now, and "actually" before a dismissal
     ("super, placing the order now", "affirm", "plan"), ("thik hai, order kar rahi hu abhi", "affirm", "plan"),
     ("actually never mind, the parcel just came", "deny", "ending"),
     # session 48 (v54, in-sample): asked to be told when it ships, the customer waits (answered from cancellation)
     ("ok ji, dispatch hote hi msg kar dena", "affirm", "plan"),
     # session 48 (v55, in-sample): ordering said as the plan; the number not with the customer ends the form
     ("great, ordering the M then", "affirm", "plan"), ("arre, number's not with me right now, will check at home", "deny", "ending"),
     # session 49 (v56, in-sample): an emoji the message starts with leads like a word (fell back; v55's "🙏 ordering 2
     # then" asked for the number)
     ("🙏 then i'll order the green one", "thank", "plan"), ("👍 ordering 3 then", "affirm", "plan"),
     # session 50 (v58, in-sample): the list mailed tonight (answered from bulk_orders)
     ("ok, mailing the sizes list tonight", "affirm", "plan")],
)
def test_an_acknowledgement_with_a_plan_or_a_reason_keeps_its_intent(matcher, text, intent, rule):
    found = matcher.match_with_remark(text)
    assert (found.intent, found.rule) == (intent, rule)


@pytest.mark.parametrize(
    "text",
    ["ok, will it fit a 38 chest", "great, will you ship to guwahati?", "theek hai, exchange kab tak hoga",
     "ok and what about cod", "ok my parcel is still not here", "never mind, where is my refund?",
     "ok 👎 will check", "fine, what's the fee", "never mind", "ok",
     "ok great, I will order once you tell me which fabric is cooler for summer and whether it shrinks",
     # session 48: something asked for, not a message to wait for
     "ok, size chart bata dena",
     # session 49: an emoji lead asks nothing either
     "🙏 where is my parcel",
     # session 50: "will a" starts a question ("lol ok. … will a parcel reach him" was a plan once "lol" led)
     "lol ok, will a parcel reach kathmandu"],
)
def test_questions_and_other_remarks_are_left_to_the_classifier(matcher, text):
    assert matcher.match_with_remark(text) is None


# Session 49 (v56, in-sample): something to explain asked for after an ok, which the classifier was unsure of, is no
# comment on the answer ("fine. kesar circle points ka poora hisaab samjhao": ask_question 0.66, read as an ok).
@pytest.mark.parametrize("text", ["fine. loyalty points ka hisaab samjhao", "theek hai, cod charges samjha do",
                                  "ok, explain the exchange rules once more"])
def test_something_to_explain_after_an_ok_is_no_comment(matcher, text):
    assert matcher.match_with_remark(text, "ask_question", 0.66) is None
    assert matcher.match_with_remark("great, exactly what i wanted", "ask_question", 0.66).rule == "comment"


# A follow-up question after an acknowledgement opens with a connective ("and", "also", "aur", "one more
# thing"): the question test reads past it (escalation.yml `with_a_remark.connectives`). Session 21: such a
# question with the cue "will" in it read as a plan at affirm 1.00.
@pytest.mark.parametrize(
    "text",
    ["acha and how many days will shipping take to bhopal", "ok also will the kurta shrink after a wash",
     "thik hai to when will it reach jaipur", "cool, and btw is the dupatta included in the set",
     "got it, one more thing can I pay by upi then", "ok and what about the ones on sale, will they ship",
     "theek hai but will the colour run", "acha aur one more thing how do i measure my waist"],
)
def test_a_question_after_a_connective_is_no_plan(matcher, text):
    assert matcher.match_with_remark(text) is None


@pytest.mark.parametrize(
    "text, intent",
    [("ok and I'll order tonight", "affirm"), ("thanks, also will share pics on insta", "thank"),
     ("acha aur main kal order kar dungi", "affirm"), ("ok but I will wait for the sale", "affirm"),
     ("cool, btw gonna gift it to my sister", "affirm")],
)
def test_a_plan_after_a_connective_is_still_a_plan(matcher, text, intent):
    found = matcher.match_with_remark(text)
    assert (found.intent, found.rule) == (intent, "plan")


# A plan that also takes leave closes the chat: the classifier's goodbye decides, not affirm (session 23:
# such a closing was answered "Great!"). Without `farewells` it is a plan again.
@pytest.mark.parametrize(
    "text",
    ["chalo, kal dekhungi, bye", "ok will check later, good night", "thik hai main soch ke bataunga, byeee",
     "cool, will order next week, ttyl", "acha theek hai, kal order karungi, tata"],
)
def test_a_plan_that_takes_leave_is_left_to_the_classifier(matcher, section, text):
    assert matcher.match_with_remark(text) is None
    remarks = {k: v for k, v in section["with_a_remark"].items() if k != "farewells"}
    without = {**section, "with_a_remark": remarks, "leave_taking": None}  # leave_taking reads the farewells
    assert AcknowledgementMatcher(without).match_with_remark(text).rule == "plan"


def test_a_farewell_word_inside_another_word_is_no_farewell(matcher):
    found = matcher.match_with_remark("ok will check the byelaws of the wholesale form")  # "bye" only as a word
    assert (found.intent, found.rule) == ("affirm", "plan")


def test_connectives_are_a_checked_list(section):
    remarks = section["with_a_remark"]
    assert {"and", "also", "aur", "but", "btw", "one more thing"} <= set(remarks["connectives"])
    with pytest.raises(ValueError, match="with_a_remark.connectives"):
        AcknowledgementMatcher({**section, "with_a_remark": {**remarks, "connectives": "and"}})
    with pytest.raises(ValueError, match="quote it"):
        AcknowledgementMatcher({**section, "with_a_remark": {**remarks, "connectives": ["and", False]}})
    without = AcknowledgementMatcher({**section, "with_a_remark": {k: v for k, v in remarks.items() if k != "connectives"}})
    assert without.match_with_remark("acha and how many days will shipping take").rule == "plan"  # as before


def test_a_hand_off_intent_is_never_turned_into_an_acknowledgement(matcher):
    assert matcher.match_with_remark("ok I will wait for my money back then") is not None
    assert matcher.match_with_remark("ok I will wait for my money back then", "request_refund") is None
    assert matcher.match_with_remark("forget it, you people are hopeless", "complaint") is None


def test_remark_intents_must_be_acknowledgement_intents(section):
    remarks = {**section["with_a_remark"], "plans": {**section["with_a_remark"]["plans"], "intents": ["goodbye"]}}
    with pytest.raises(ValueError, match="goodbye"):
        AcknowledgementMatcher({**section, "with_a_remark": remarks})


def test_a_plan_becomes_affirm_and_a_request_inside_it_still_hands_off(tmp_path):
    acknowledgements = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    keywords = trained(KeywordEscalation, tmp_path, BOT_INTENTS, "keyword_escalation")
    plan, request = keywords.process(acknowledgements.process([
        classified("great, will drop them an email", intent="ask_question", confidence=0.62),
        classified("ok, I will talk to a human then", intent="affirm", confidence=0.7)]))
    assert plan.get("intent") == {"name": "affirm", "confidence": 1.0}
    assert plan.get(ACKNOWLEDGEMENT_KEY)["rule"] == "plan"
    assert request.get("intent") == {"name": "request_human", "confidence": 1.0}


def ranked(text, *ranking):
    message = Message(data={"text": text})
    message.set("intent", {"name": ranking[0][0], "confidence": ranking[0][1]})
    message.set("intent_ranking", [{"name": name, "confidence": confidence} for name, confidence in ranking])
    message.set("entities", [])
    return message


def test_affirm_and_thank_are_no_rivals_for_the_ambiguity_test(tmp_path):
    """Session 9: "…, trying it on now" ranked affirm 0.68 and thank 0.59 was handed off by
    FallbackClassifier's ambiguity threshold (gap < 0.1), though both are the same resolution signal."""
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    [message] = component.process([
        ranked("ok thanks, trying it on right now", ("affirm", 0.68), ("thank", 0.59), ("deny", 0.19))])
    assert message.get("intent") == {"name": "affirm", "confidence": 0.68}  # as classified
    assert [(e["name"], e["confidence"]) for e in message.get("intent_ranking")] == [
        ("affirm", 0.68), ("deny", 0.19), ("thank", 0.0)]
    assert message.get(ACKNOWLEDGEMENT_KEY) is None


def test_affirm_and_praise_are_no_rivals_either(tmp_path):
    """Session 17: a short Hinglish approval ranked affirm 0.70 and feedback_positive 0.69 fell back,
    though either reading resolves the conversation with a courtesy reply (`same_decision_intents`)."""
    component = trained(Acknowledgements, tmp_path, [*BOT_INTENTS, "feedback_positive"], "acknowledgements")
    [message] = component.process([
        ranked("sahi hai ye to", ("affirm", 0.70), ("feedback_positive", 0.68), ("ask_question", 0.41))])
    assert message.get("intent") == {"name": "affirm", "confidence": 0.70}  # as classified
    assert [(e["name"], e["confidence"]) for e in message.get("intent_ranking")] == [
        ("affirm", 0.70), ("ask_question", 0.41), ("feedback_positive", 0.0)]


def test_a_goodbye_and_an_acknowledgement_are_no_rivals(tmp_path):
    """Session 23: "ok byeee 👋" ranked affirm 0.79 and goodbye 0.78 fell back and was handed off. (Since session
    29 a farewell word makes it a goodbye outright, `leave_taking`; without one the rivals still stand down.)"""
    component = trained(Acknowledgements, tmp_path, [*BOT_INTENTS, "goodbye"], "acknowledgements")
    [message] = component.process([ranked("ok done for today 👋", ("affirm", 0.79), ("goodbye", 0.78), ("thank", 0.29))])
    assert message.get("intent") == {"name": "affirm", "confidence": 0.79}
    assert [(e["name"], e["confidence"]) for e in message.get("intent_ranking")] == [
        ("affirm", 0.79), ("thank", 0.29), ("goodbye", 0.0)]


def test_same_decision_intents_are_resolution_signals_and_a_list(section):
    settings = yaml.safe_load((PROJECT_ROOT / "escalation.yml").read_text(encoding="utf-8"))
    same = settings["acknowledgements"]["same_decision_intents"]
    assert "feedback_positive" in same and "goodbye" in same
    # resolution signals, and the goodbye (a courtesy close): never a hand-off intent
    assert set(same) <= set(settings["unresolved_turns"]["resolution_intents"]) | {"goodbye"}
    assert not set(same) & set(settings["acknowledgements"]["with_a_remark"]["keep_intents"])
    with pytest.raises(ValueError, match="same_decision_intents must be a list of intent names"):
        AcknowledgementMatcher({**section, "same_decision_intents": "affirm"})


@pytest.mark.parametrize(
    "ranking",
    [
        (("affirm", 0.66), ("deny", 0.61)),  # yes or no: a real ambiguity, left to FallbackClassifier
        (("thank", 0.64), ("ask_question", 0.6)),  # thanks, or a question: left alone
        (("ask_question", 0.7), ("affirm", 0.65), ("thank", 0.6)),
    ],
)
def test_other_close_runner_ups_are_left_alone(tmp_path, ranking):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    [message] = component.process([ranked("sure thing, trying it on right now", *ranking)])
    assert [(e["name"], e["confidence"]) for e in message.get("intent_ranking")] == list(ranking)


def test_a_request_after_thanks_still_hands_off(tmp_path):
    acknowledgements = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    keywords = trained(KeywordEscalation, tmp_path, BOT_INTENTS, "keyword_escalation")
    [message] = keywords.process(acknowledgements.process([
        ranked("thanks, now connect me to an agent", ("thank", 0.64), ("affirm", 0.6))]))
    assert message.get("intent") == {"name": "request_human", "confidence": 1.0}


# Thanks or praise with its reason and nothing to answer (escalation.yml `acknowledgements.praise_and_thanks`).
# Sentences written for this test (none is in the NLU data or a bench set).
@pytest.mark.parametrize(
    "text, intent, rule",
    [
        ("thanks a ton for sorting the exchange so fast, the new size fits 🙌", "thank", "thanks"),
        ("ok thank you, parcel aaj hi aa gaya 😊", "thank", "thanks"),
        ("dhanyavad, delivery wale bhaiya bhi bahut polite the", "thank", "thanks"),
        ("the co-ord set is gorgeous, wore it to a lunch today 😍", "feedback_positive", "praise"),
        ("sunscreen bahut badhiya hai, bilkul chipchipa nahi lagta", None, None),  # "nahi": left to the classifier
        ("loved the packaging, felt like a gift", "feedback_positive", "praise"),
        # session 28: a thank-you at the end ("… free shipping 😍 thanks" was answered from the shipping entry)
        ("free gift wrap on my order, so sweet, thanks ji", "thank", "thanks"),
        ("parcel reached in 2 days, shukriya", None, None),              # a digit: left to the classifier
        # session 48 (v55, in-sample): the Bengali thanks with its reason; a polite delivery man praised
        ("onek dhonnobad, size wala jawab sahi nikla", "thank", "thanks"),
        ("courier wale uncle bade tameez wale the, maza aa gaya", "feedback_positive", "praise"),
        # session 49 (v56, in-sample): a delivery man praised as a good man (read as a complaint)
        ("aandhi me bhi parcel de gaye courier wale, bade bhale insaan hai", "feedback_positive", "praise"),
    ],
)
def test_thanks_or_praise_with_a_reason_is_an_acknowledgement(matcher, text, intent, rule):
    found = matcher.match_praise(text, "ask_question")
    assert (found.intent, found.rule) == (intent, rule) if intent else found is None


@pytest.mark.parametrize(
    "text",
    [
        "thanks, but the parcel still shows in transit",            # a problem
        "thank you, my order id is 55120",                          # a number for the order form
        "love the kurta, do you have it in mustard",                # a question without "?"
        "loved the serum 😍 kab restock hoga",
        "thanks for the info can i also pay with paytm",
        "beautiful prints, need one in XL please",                  # a request
        "thanks for nothing 😡",                                     # a negative emoji
        "best sunscreen for dry skin",                              # no praise of us, just a search
        "send me the size chart, thanks",                           # a request before the thanks
        "is express free above 999 thanks",                         # a question before the thanks
        "delivery wale ne tameez se baat nahi ki",                   # session 48: manners missed, not praised
        "ek zabardast sa anniversary note likh do",                 # session 50 (v59): something to write
    ],
)
def test_questions_problems_and_requests_are_no_praise(matcher, text):
    assert matcher.match_praise(text, "ask_question") is None


def test_praise_only_replaces_an_ordinary_reading(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS + ["feedback_positive", "order_status"], "acknowledgements")
    read_as_order, refund = component.process([
        classified("thank you for the lightning fast delivery, reached a day early 😍", intent="order_status", confidence=0.7),
        classified("thank you for the fast pickup, waiting for my money now", intent="request_refund", confidence=0.8),
    ])
    assert read_as_order.get("intent") == {"name": "thank", "confidence": 1.0}
    assert read_as_order.get(ACKNOWLEDGEMENT_KEY)["rule"] == "thanks"
    assert refund.get("intent") == {"name": "request_refund", "confidence": 0.8}


def test_praise_needs_the_praise_intent_in_the_training_data(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    [message] = component.process([classified("the kurta is stunning, so happy with it", intent="ask_question", confidence=0.7)])
    assert message.get("intent") == {"name": "ask_question", "confidence": 0.7}


def test_an_acknowledgement_is_no_rival_of_a_question(tmp_path):
    """ "will it shrink" was ranked ask_question 0.61 and deny 0.58 and handed off as ambiguous."""
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    question, statement = component.process([
        ranked("does the dye bleed", ("ask_question", 0.62), ("deny", 0.58), ("affirm", 0.2)),
        ranked("no the dye bleeds", ("ask_question", 0.62), ("deny", 0.58), ("affirm", 0.2)),
    ])
    assert [(e["name"], e["confidence"]) for e in question.get("intent_ranking")] == [
        ("ask_question", 0.62), ("affirm", 0.2), ("deny", 0.0)]
    assert [e["name"] for e in statement.get("intent_ranking")] == ["ask_question", "deny", "affirm"]


# Session 24: a bare "never mind" / "koi baat nahi" right after an answer got "Sorry about that. Could you tell me a
# bit more…" (the deny reply). Such a message is only `with_a_remark.endings` leads: deny with the `dismissal` entity,
# which the rules acknowledge outside the order form and treat as any ending inside it.
@pytest.mark.parametrize("text", ["never mind", "Never mind!!", "koi baat nahi", "koi baat nahi ji", "chhodo yaar",
                                  "nvm", "rehne do bhai", "forget it, leave it"])
def test_a_bare_dismissal_is_deny_with_the_dismissal_entity(tmp_path, text):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    [message] = component.process([classified(text, intent="deny", confidence=0.52)])
    assert message.get("intent") == {"name": "deny", "confidence": 1.0}
    assert [(e["entity"], e["value"]) for e in message.get("entities")] == [("dismissal", "dismissal")]
    assert message.get(ACKNOWLEDGEMENT_KEY)["rule"] == "dismissal"


@pytest.mark.parametrize("text", [
    "never mind, found the tracking sms",  # a reason: an ending with a remark, no dismissal entity
    "no that didn't help", "no", "nahi", "never mind 😡", "koi baat nahi, return kaise karu?", "never mind agent",
    "koi baat nahi, size chart bhej do",  # alone_only: with a request after it, it is no ending either
])
def test_anything_more_than_a_dismissal_gets_no_dismissal_entity(tmp_path, text):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    [message] = component.process([classified(text, intent="deny", confidence=0.9)])
    assert all(e["entity"] != "dismissal" for e in message.get("entities"))


def test_a_dismissal_is_never_made_of_a_hand_off_intent(matcher, section):
    keep = section["with_a_remark"]["keep_intents"][0]
    assert matcher.match_dismissal("never mind", classifier_intent=keep) is None
    assert matcher.match_dismissal("never mind", classifier_intent="deny").rule == "dismissal"


def test_an_alone_only_dismissal_leads_no_remark(matcher):
    assert matcher.match_with_remark("koi baat nahi, size chart bhej do", "deny") is None
    assert matcher.match_with_remark("never mind, found the tracking sms", "deny").rule == "ending"
    assert matcher.match_dismissal("koi na ji", "deny").items == ["koi na"]


# Session 28: a hello that only asks how things are ("kya haal chaal hai aap logon ke", "aur batao kaise ho aap log? sab
# mast?") was read as a question and handed off as "not sure"; a greeting's emoji made "suprabhat ☀️" an "ok".
@pytest.mark.parametrize("text", ["aur batao kaise ho aap log? sab mast?", "kya haal chaal hai aap logon ke",
                                  "suprabhat ☀️", "hello team, how are you all doing?", "namaste ji, kaise hain aap sab",
                                  "hey there 👋", "hi :)", "namaste ji 🙏", "hi 🙏",
                                  # session 29: the bot greeted by name
                                  "hello bot, kaise ho 🙂", "kaisa chal raha hai bot ji"])
def test_a_greeting_that_asks_how_things_are_is_greet(matcher, text):
    assert matcher.match(text).intent == "greet"


@pytest.mark.parametrize("text", ["great, nothing more from me 👍", "ok thats all from me"])
def test_nothing_else_to_ask_is_an_acknowledgement(matcher, text):
    # session 29 (v23): "cool, nothing else from me for now 🙂" fell back and was handed off
    assert matcher.match(text).intent == "affirm"


def test_a_question_about_the_bot_is_no_greeting(matcher):
    assert matcher.match("hi bot, are you a real person?") is None


def test_a_greeting_is_read_in_the_customers_own_words(tmp_path):
    # FollowUpQuestion cuts a leading "aur" ("and") off the text the classifier reads; the greeting is in the rest.
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    message = classified("batao kaise ho aap log? sab mast?", intent="ask_question", confidence=0.78)
    message.set(CUSTOMER_TEXT_KEY, "aur batao kaise ho aap log? sab mast?")
    cut = classified("👍", intent="ask_question", confidence=0.5)
    cut.set(CUSTOMER_TEXT_KEY, "also 👍")  # the cut text still counts when the whole message is no acknowledgement
    greeting, thumbs = component.process([message, cut])
    assert greeting.get("intent") == {"name": "greet", "confidence": 1.0}
    assert thumbs.get("intent") == {"name": "affirm", "confidence": 1.0}


@pytest.mark.parametrize("text, intent", [("hi, thanks", "thank"), ("ok 😊", "affirm"), ("hi 😡", "deny"),
                                          ("hello 👎", "deny")])
def test_a_greeting_beside_thanks_or_a_verdict_is_not_greet(matcher, text, intent):
    assert matcher.match(text).intent == intent


@pytest.mark.parametrize("text", ["namaste ji, mera order kab aayega", "hi agent", "hello, is cod available?"])
def test_a_greeting_with_anything_else_goes_to_the_classifier(matcher, text):
    assert matcher.match(text) is None


# Session 28: an acknowledgement before a bare dismissal ("ok never mind", "chalo koi na, chhodo") read as deny ("sorry
# that didn't help") or fell back; it is a dismissal. A verdict of the dismissal's own intent is no lead-in.
@pytest.mark.parametrize("text, items", [
    ("ok never mind", ["never mind"]), ("thik hai, rehne do", ["rehne do"]), ("acha koi baat nahi ji", ["koi baat nahi"]),
    ("chalo koi na, chhodo", ["koi na", "chhodo"]), ("okay okay forget it", ["forget it"]),
    # session 36 (v32): a filler word first ("oh") stopped the lead-in, and "oh ok, forget it then" was a "no"
    ("oh ok, forget it then", ["forget it"]), ("arre thik hai, rehne do", ["rehne do"]),
])
def test_an_acknowledgement_before_a_dismissal_keeps_it_a_dismissal(matcher, text, items):
    found = matcher.match_dismissal(text, "deny")
    assert (found.rule, found.items) == ("dismissal", items)


@pytest.mark.parametrize("text", ["useless, never mind", "ok never mind the refund, where is my order", "ok thanks"])
def test_a_verdict_or_a_question_around_a_dismissal_is_not_one(matcher, text):
    assert matcher.match_dismissal(text, "deny") is None


# Session 25: a dismissal that names what it drops, then a new question in the next sentence, was read as an
# ending with a remark (deny 1.00): the remark began "that", and the question after the full stop was lost. The
# question test now reads the start of every clause, and "never mind that" / "leave that" are leads themselves.
@pytest.mark.parametrize("text", [
    "ok leave that. how long does a refund to upi take", "never mind that one. do you ship to ladakh",
    "nvm, forget the kurta. which serum suits oily skin", "chhodo, ye batao exchange kitne din mein hota hai",
])
def test_a_new_question_after_a_dismissal_goes_to_the_classifier(matcher, text):
    assert matcher.match_with_remark(text, "deny") is None


@pytest.mark.parametrize("text", ["forget that", "never mind that", "leave this", "leave that yaar"])
def test_a_dismissal_that_names_what_it_drops_is_still_a_dismissal(matcher, text):
    assert matcher.match_dismissal(text, "deny").rule == "dismissal"


def test_a_reason_after_a_dismissal_is_still_an_ending(matcher):
    found = matcher.match_with_remark("never mind that, my brother already picked it up", "deny")
    assert (found.intent, found.rule) == ("deny", "ending")


# Session 29: a message that takes leave and asks for nothing is a goodbye (escalation.yml
# `acknowledgements.leave_taking`): "hmm samajh gayi, alvida" was read as "ok", "haha nvm bye" as "no".
@pytest.mark.parametrize("text, reading", [
    ("acha theek hai, chalo bye", ("affirm", 0.8)),
    ("lol forget it, good night", ("deny", 0.7)),
    ("ok 10% sounds fair. ttyl, will decide by tonight", ("ask_question", 0.45)),
    # session 48 (v54, in-sample): the Urdu farewell
    ("shukriya ji, allah hafiz", ("thank", 0.7)),
])
def test_a_message_that_takes_leave_is_a_goodbye(matcher, text, reading):
    found = matcher.match_leave(text, *reading)
    assert found is not None and found.intent == "goodbye" and found.rule == "farewell"


@pytest.mark.parametrize("text, reading", [
    ("ok bye, will it reach by friday", ("affirm", 0.8)),            # asks something
    ("bye, but my refund still hasn't come", ("deny", 0.7)),        # names a problem
    ("bye bye, connect me to an agent first", ("affirm", 0.7)),     # a request
    ("ok bye 👎", ("affirm", 0.8)),                                 # a negative emoji
    ("tata play dth recharge karna hai", ("ask_question", 0.5)),    # "tata" as a brand
    ("chalo bye", ("out_of_scope", 0.9)),                          # a reading the rule does not replace
])
def test_leave_taking_is_not_read_into_other_messages(matcher, text, reading):
    assert matcher.match_leave(text, *reading) is None


def test_leave_taking_needs_the_goodbye_intent_in_the_training_data(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")  # no goodbye intent
    [message] = component.process([classified("hmm got it, bye for now", intent="deny", confidence=0.7)])
    assert message.get("intent")["name"] == "deny"
    (tmp_path / "g").mkdir()
    with_goodbye = trained(Acknowledgements, tmp_path / "g", BOT_INTENTS + ["goodbye"], "acknowledgements")
    [message] = with_goodbye.process([classified("hmm got it, bye for now", intent="deny", confidence=0.7)])
    assert message.get("intent") == {"name": "goodbye", "confidence": 1.0}
    assert message.get("acknowledgement")["rule"] == "farewell"


def test_a_leave_taking_mistake_is_a_clear_error(section):
    broken = {**section, "leave_taking": {**section["leave_taking"], "below": 3}}
    with pytest.raises(ValueError, match="leave_taking.below must be a number from 0 to 1"):
        AcknowledgementMatcher(broken)
    with pytest.raises(ValueError, match="needs an `intent`"):
        AcknowledgementMatcher({**section, "leave_taking": {"below": 0.5}})


# Session 35 (v30): an acknowledgement with a short comment on the answer ("noted, cold water it is ✨", "ok fir haathon
# se hi") fell back and was handed off as "not sure", or read as "no". It is the acknowledgement when the classifier
# could not place it; a confident reading, a problem, a request, a doubt, a digit or a question keeps it out.
@pytest.mark.parametrize("text, classifier_intent, confidence", [
    ("noted, cold water it is ✨", "ask_question", 0.23), ("great, exactly what i wanted 🙌", "ask_question", 0.4),
    ("ok fir haathon se hi", "greet", 0.65), ("ok, checking", "deny", 0.61),
    ("cool cool, sounds like a plan", "feedback_positive", 0.55),
    ("great, exactly what i wanted", "affirm", 0.4),  # the classifier's own "ok", but too unsure: it would fall back
])
def test_an_acknowledgement_with_a_comment_is_the_acknowledgement_when_the_classifier_is_unsure(
        matcher, text, classifier_intent, confidence):
    found = matcher.match_with_remark(text, classifier_intent, confidence)
    assert (found.intent, found.rule) == ("affirm", "comment")


@pytest.mark.parametrize("text, classifier_intent, confidence", [
    ("hmm abhi bhi confuse hu yaar", "deny", 0.5),  # a doubt
    ("ok fine just tell me your support hours then", "ask_question", 0.4),  # a request
    ("ok but the parcel is late", "complaint", 0.5),  # a problem, and a hand-off intent
    ("ok then whats the express delivery charge", "ask_question", 0.5),  # a question
    ("ok noted, 44 chest", "ask_question", 0.5),  # a digit: a size or an order number
    ("hmm let me see", "order_status", 0.95),  # the classifier is sure of something else
    ("great, exactly what i wanted", "ask_question", 0.85),
    ("ok thanks, trying it on right now", "affirm", 0.68),  # the classifier's own acknowledgement stays
    # session 47 (v53, in-sample): a request after the lead ("ok then recommend me some film for tonight" was an ok)
    ("ok then recommend a good web series", "out_of_scope", 0.64),
    ("acha ek shayari suna do", "out_of_scope", 0.69),
])
def test_a_comment_with_a_problem_a_request_a_question_or_a_sure_reading_is_no_acknowledgement(
        matcher, text, classifier_intent, confidence):
    found = matcher.match_with_remark(text, classifier_intent, confidence)
    assert found is None or found.rule != "comment"


def test_a_comment_changes_the_intent_through_the_component(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    unsure, sure = component.process([classified("noted, cold water it is ✨", intent="ask_question", confidence=0.3),
                                      classified("noted, cold water it is", intent="ask_question", confidence=0.95)])
    assert unsure.get("intent")["name"] == "affirm"
    assert sure.get("intent")["name"] == "ask_question"


# Session 35 (v30): "koi baat nahi, thanks" after three answers was read as "no" and pattern 4 handed off. A dismissal
# closed with thanks or an "ok" is that closing, a resolution signal, and carries no dismissal.
@pytest.mark.parametrize("text, intent", [("koi baat nahi, thanks", "thank"), ("never mind, thank u", "thank"),
                                          ("chhodo yaar, thank you so much", "thank"),
                                          # session 49 (v56, in-sample): thanks "anyway" (read as "no": the bot said sorry)
                                          ("ok forget it, thanks anyway!", "thank")])
def test_a_dismissal_closed_with_thanks_is_the_thanks(matcher, text, intent):
    found = matcher.match_dismissal(text, "deny")
    assert (found.intent, found.rule) == (intent, "closing")


@pytest.mark.parametrize("text", ["rehne do, mil gaya", "never mind, ok"])
def test_a_dismissal_with_a_reason_or_an_ok_after_it_is_no_thank_you(matcher, text):
    # "rehne do, mil gaya": the customer found the number and drops the form (hold-out v6); not a closing
    found = matcher.match_dismissal(text, "deny")
    assert found is None or found.rule != "closing"


@pytest.mark.parametrize("text", ["that's it from me, have a lovely day", "alright, signing off", "great, take care",
                                  # session 37 (v33): "ok laters" was answered "Great!"
                                  "ok laters", "cool, catch you later",
                                  # session 38 (v34): "ta ta" alone was read as thanks
                                  "ta ta"])
def test_a_comment_that_takes_leave_is_a_goodbye_not_an_ok(matcher, text):
    assert matcher.match_with_remark(text, "ask_question", 0.4) is None
    assert matcher.match_leave(text, "affirm", 0.9).intent == "goodbye"


def test_a_dismissal_closed_with_thanks_gets_no_dismissal_entity(tmp_path):
    component = trained(Acknowledgements, tmp_path, BOT_INTENTS, "acknowledgements")
    [message] = component.process([classified("koi baat nahi, thanks", intent="deny", confidence=0.87)])
    assert message.get("intent")["name"] == "thank"
    assert all(e["entity"] != "dismissal" for e in message.get("entities"))


# Session 35 (v30): leaving the order form by skipping it, or by putting the number off with a reason.
@pytest.mark.parametrize("text", ["skip that, i'll look it up on the website",
                                  "I don't have it on me right now, will come back later",
                                  # session 37 (v33): not found right now, and put off
                                  "can't find it rn, will ping again later",
                                  # session 38 (v34): skipped for now, with a plan
                                  "skip for now, will message once i find it"])
def test_skipping_or_putting_the_number_off_is_an_ending(matcher, text):
    found = matcher.match_with_remark(text, "goodbye", 0.9)
    assert (found.intent, found.rule) == ("deny", "ending")


def test_a_side_question_after_putting_the_number_off_is_no_ending(matcher):
    assert matcher.match_with_remark("i don't have it on me right now, do you deliver on sundays?", "ask_question") is None


# Session 38 (v34, v35): "understood" in Hinglish was read as a greeting or fell back.
@pytest.mark.parametrize("text", ["samjhi", "hmm samajh gaya", "ok samjh aa gaya ji"])
def test_understood_in_hinglish_is_an_ok(matcher, text):
    assert matcher.match(text).intent == "affirm"


@pytest.mark.parametrize("text", ["sasriakal ji", "sat sri akal 🙏"])
def test_the_punjabi_greeting_is_a_greeting(matcher, text):
    assert matcher.match(text).intent == "greet"


# Session 45 (v48, in-sample): "adaab 🙏" was read as thanks (the folded hands); other regional greetings.
@pytest.mark.parametrize("text", ["adaab 🙏", "aadab ji", "vanakkam 🙏", "radhe radhe ji"])
def test_regional_greetings_are_greetings(matcher, text):
    assert matcher.match(text).intent == "greet"


# Session 35 (v31): the bot thanked by name, a greeting to the team as people, good night in Hindi.
@pytest.mark.parametrize("text, intent", [("ty bot", "thank"), ("thanks bot 🙏", "thank"), ("evening, lovely people 🌆", "greet"),
                                          ("morning folks", "greet")])
def test_the_bot_or_the_team_named_around_an_acknowledgement(matcher, text, intent):
    assert matcher.match(text).intent == intent


def test_good_night_in_hindi_is_a_goodbye(matcher):
    assert matcher.match_leave("shubhratri 🌙", "nlu_fallback", 0.3).intent == "goodbye"
    assert matcher.match_leave("shubhratri 🌙", "greet", 0.65).intent == "goodbye"


@pytest.mark.parametrize("text", ["bot? 🤖", "bot ho kya"])
def test_the_bot_named_alone_is_no_acknowledgement(matcher, text):
    assert matcher.match(text) is None


# Every intent the remark rules name must be an acknowledgement intent; the error names the setting (session 36: one
# check for all four settings instead of three copies).
@pytest.mark.parametrize("path", [("plans", "intents"), ("endings", "intent"), ("endings", "closed_by"),
                                  ("comments", "intents")])
def test_an_unknown_intent_in_the_remark_rules_names_its_setting(section, path):
    import copy

    broken = copy.deepcopy(section)
    group, key = path
    broken["with_a_remark"][group][key] = "no_such_intent" if key == "intent" else ["no_such_intent"]
    with pytest.raises(ValueError, match=rf"with_a_remark\.{group}\.{key}: 'no_such_intent' must be one of"):
        AcknowledgementMatcher(broken)


def test_a_long_message_after_a_dismissal_is_not_matched_again_for_every_word(section, monkeypatch):
    # A closing is short ("koi baat nahi, thanks"); a long message after a dismissal lead goes to the classifier
    # without its every ending being matched as a possible thank-you (thousands of words would cost seconds).
    matcher = AcknowledgementMatcher(section)
    calls = []
    real_match = matcher.match
    monkeypatch.setattr(matcher, "match", lambda text: calls.append(text) or real_match(text))
    assert matcher.match_dismissal("koi baat nahi, thanks", "deny").rule == "closing"
    assert calls
    calls.clear()
    assert matcher.match_dismissal("koi baat nahi, " + "mera order abhi tak nahi aaya " * 300 + "thanks", "deny") is None
    assert calls == []


# Session 46 (v50, in-sample): "see you again" in Hindi was read as an ok with a plan ("milenge" ends like a promise);
# the Bengali "nomoskar" fell back.
@pytest.mark.parametrize("text", ["chalo ji, phir milenge 🙏", "theek hai, fir milenge"])
def test_see_you_again_in_hindi_is_a_goodbye_not_a_plan(matcher, text):
    assert matcher.match_with_remark(text, "goodbye", 0.9) is None
    assert matcher.match_leave(text, "affirm", 0.9).intent == "goodbye"


@pytest.mark.parametrize("text", ["nomoskar 🙏", "nomoshkar didi"])
def test_the_bengali_greeting_is_a_greeting(matcher, text):
    assert matcher.match(text).intent == "greet"


# Session 46 (v51, in-sample): the Ladakhi greeting, and a greeting that says a question follows (both fell back).
@pytest.mark.parametrize("text", ["julley 🙏", "adaab, ek sawal tha", "hello ji, kuch puchna tha",
                                  # session 47 (v52, in-sample): the Tibetan greeting, with "quick question" (fell back)
                                  "tashi delek 🙏", "hello, one quick question",
                                  # session 47 (v53, in-sample): the Manipuri greeting; a greeting with "dada"
                                  "khurumjari 🙏", "nomoshkar dada",
                                  # session 48 (v54, in-sample): the Ladakhi greeting with a well-being wished
                                  "julley! hope all is well at your end",
                                  # session 49 (v56, in-sample): a greeting to the goddess, the Bengali "what news"
                                  # (fell back)
                                  "jai mata di, ek cheez puchni hai", "nomoskar, ki khobor"])
def test_a_greeting_that_says_a_question_follows_is_a_greeting(matcher, text):
    assert matcher.match(text).intent == "greet"


def test_the_question_itself_after_such_a_greeting_goes_to_the_classifier(matcher):
    assert matcher.match("ek sawal tha, exchange kitne din me hota hai") is None
