""""One sec, checking my inbox for it": the order form keeps waiting instead of ending, resolving or handing off."""
from __future__ import annotations

import pytest
import yaml
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.training_data.message import Message

from actions.settings import PROJECT_ROOT
from tests.components.designer_components import trained_and_loaded
from components.still_looking import STILL_LOOKING_ENTITY, STILL_LOOKING_KEY, StillLooking
from tests.components.test_question_rivals import shipped_fallback_settings

SETTINGS = str(PROJECT_ROOT / "escalation.yml")
INTENTS = ["order_status", "ask_question", "affirm", "deny", "complaint", "request_human", "urgent_problem"]


def make_component(tmp_path, intents=INTENTS, settings=SETTINGS):
    return trained_and_loaded(StillLooking, tmp_path, intents, settings)


def classified(text, *ranking, metadata=None):
    message = Message(data={"text": text, **({"metadata": metadata} if metadata else {})})
    message.set("intent", {"name": ranking[0][0], "confidence": ranking[0][1]})
    message.set("intent_ranking", [{"name": name, "confidence": confidence} for name, confidence in ranking])
    return message


def parsed(component, message):
    """The component, then FallbackClassifier as config.yml ships it (what the policies see)."""
    [message] = FallbackClassifier(shipped_fallback_settings()).process(component.process([message]))
    return message


def still_looking_entities(message):
    return [e for e in message.get("entities") or [] if e["entity"] == STILL_LOOKING_ENTITY]


@pytest.mark.parametrize("text, reading", [
    # What the classifier made of such messages: "no" ended the form, "ok" resolved the conversation,
    # and a low confidence handed off.
    ("just a sec, searching my gmail for the order id", ("deny", 0.61)),
    ("ek min ruko", ("affirm", 0.52)),
    ("hang on pls", ("out_of_scope", 0.31)),
    ("wait, let me find the confirmation sms", ("order_status", 0.66)),
    ("ruko zara, mail mein number dhoondh raha hu", ("out_of_scope", 0.40)),
    ("give me a moment, looking for the invoice", ("ask_question", 0.44)),
    # session 27: scrolling for it, fetching it from another phone
    ("hang on, scrolling my whatsapp chats for it", ("nlu_fallback", 0.3)),
    ("one sec, it's in my husband's phone, getting it", ("deny", 0.31)),
    # session 28: not found yet, said with a lead or with the number named
    ("order id abhi nahi mil rahi, do minute", ("deny", 0.64)),
    ("can't find the number yet, hang on", ("deny", 0.5)),
    # session 29: "wait karo" as the lead, and opening the mailbox as the search
    ("wait kijiye, inbox khol raha hu", ("affirm", 0.7)),
    ("ek min, dusre phone se number le aati hu", ("ask_question", 0.66)),
    ("hold on, mail mein order id khoj raha hu", ("complaint", 0.62)),
    # session 31 (v24, in-sample): new leads and searches, where the number is kept, and a longer message
    ("give me two ticks, hunting for the order email", ("nlu_fallback", 0.4)),
    ("bill ki photo li thi, gallery mein dekh raha hu", ("urgent_problem", 0.7)),
    # session 43 (v45, in-sample): checking and coming back, read as a question
    ("ek minute, address check karke aata hu", ("ask_question", 0.62)),
    ("ek sec, flat number confirm karke aati hu", ("ask_question", 0.61)),
    # … and what is looked up said after the search (session 43, v44)
    ("ruko, app me dekh ke batata hu kitne points hai", ("nlu_fallback", 0.4)),
    # session 44 (v47, in-sample): the polite "rukiye" as the lead
    ("rukiye, ghar ka pincode dhoondh ke aata hu", ("ask_question", 0.64)),
    ("hang tight, the receipt is somewhere in my downloads folder, fishing it out now", ("nlu_fallback", 0.45)),
    # session 31 (v25, in-sample): rummaging ("khangaal"), and asking the one who placed it
    ("ek minute, sms khangaal raha hu", ("out_of_scope", 0.5)),
    ("let me ask my wife, she placed it", ("affirm", 0.9)),
    # session 35 (v30, v31 in-sample): asking the one who placed it, searching a mailbox in Hinglish, a new lead, and
    # where the number will be
    ("hold on, my son ordered it, asking him now", ("nlu_fallback", 0.4)),
    ("ek minute, inbox me search kar raha hu", ("out_of_scope", 0.6)),
    ("gimme a sec, need to find the mail first", ("out_of_scope", 0.55)),
    ("ek min, number sms me hoga", ("ask_question", 0.6)),
    # session 37 (v33, in-sample): where the number is, after a lead, and a search with a question word inside it
    ("hold on, the number's on the payment receipt somewhere", ("ask_question", 0.76)),
    ("one moment, the invoice slip is in my other bag", ("nlu_fallback", 0.6)),
    ("ok one min, checking when it got delivered", ("order_status", 0.77)),
    # session 38 (v34, v35, in-sample): "yeah" before a lead, "brb", fetching the slip, where the number is (a mailbox,
    # an old chat)
    ("yep one sec", ("affirm", 0.73)),
    ("brb, grabbing my invoice", ("nlu_fallback", 0.5)),
    ("hang on, let me get the order slip", ("order_status", 0.68)),
    ("ek min, number email mein hai", ("ask_question", 0.68)),
    ("ruko, purane messages mein number hoga", ("affirm", 1.0)),
    ("ek sec, beti ne order kiya tha, usse puchti hu", ("affirm", 0.61)),
    # session 42 (v42, v43, in-sample): a past date or the phone it was booked from looked up, looked up and told,
    # another account or someone else's phone, an old slip
    ("one min, checking kab aaya tha woh parcel", ("order_status", 0.71)),
    ("hang on, let me see which number it was placed from", ("affirm", 0.6)),
    ("ruko, bill dekh ke batata hu", ("out_of_scope", 0.55)),
    ("ek sec, sms dekh leti hu", ("nlu_fallback", 0.5)),
    ("one sec, it went to the other email account", ("nlu_fallback", 0.45)),
    ("ruko zara, bhai ke phone pe aaya tha", ("affirm", 0.63)),
    ("brb, it's probably on the old invoice", ("nlu_fallback", 0.5)),
    # session 45 (v49, in-sample): opening the app to look, and the number promised with a lead
    ("hold on, let me open the app and check", ("nlu_fallback", 0.5)),
    ("give me a sec, i'll send you the order number", ("order_status", 0.77)),
    # session 46 (v50, in-sample): what is checked, or asked of someone, said after "let me check" (answered from
    # pricing and tracking)
    ("one min, let me check what the total comes to", ("ask_question", 0.61)),
    ("hold on, let me check with my husband which pincode he gave", ("ask_question", 0.64)),
    # session 46 (v51, in-sample): who has it, after a lead; what the cart comes to, looked up and told (fell back, or
    # read as a question)
    ("one sec, my sister's phone has it", ("nlu_fallback", 0.5)),
    ("ruko, total kitna hai dekh ke batata hu", ("ask_question", 0.73)),
    # session 47 (v52, in-sample): what is looked up said with a Hindi question word, with a lead and a search (fell
    # back, or read as an ok); the search said as a need ("dhoondhna padega")
    ("ek minute, didi se puchti hu kab mangaya tha", ("nlu_fallback", 0.5)),
    ("ruko, cart me kitne items hai woh dekhti hu", ("affirm", 0.63)),
    ("number dhoondhna padega, ek sec", ("order_status", 0.74)),
    # session 47 (v53, in-sample): the search said as a need in English words; where it is, a mailbox
    ("order id search karna padega, ek min", ("ask_question", 0.65)),
    ("one sec, it's in my husband's mailbox", ("nlu_fallback", 0.5)),
    # session 48 (v54, in-sample): the number in someone's gmail; a relative asked what date it came (fell back, or the
    # form asked again)
    ("hang on, it's in my dad's gmail", ("nlu_fallback", 0.5)),
    ("one min, let me ask my mom what day it arrived", ("order_status", 0.76)),
    # session 48 (v55, in-sample): a mailbox to log in to first; a relative to ask (both fell back)
    ("wait, it went to my work email, have to log in", ("nlu_fallback", 0.5)),
    ("papa se puchna padega, ek min", ("nlu_fallback", 0.5)),
    # session 49 (v56, in-sample): a flatmate asked which day it came (the form asked for the number)
    ("one sec, let me ask my roommate which day it was delivered", ("order_status", 0.71)),
    # session 50 (v58, in-sample): the number asked of whoever placed the order (fell back)
    ("ruko, papa ne order kiya tha, unse maangti hu", ("ask_question", 0.62)),
])
def test_still_looking_becomes_an_order_message_the_form_waits_on(tmp_path, text, reading):
    component = make_component(tmp_path)
    message = parsed(component, classified(text, reading, ("greet", 0.05)))
    assert message.get("intent") == {"name": "order_status", "confidence": 1.0}
    [entity] = still_looking_entities(message)
    assert entity["value"] == "still_looking"
    assert message.get(STILL_LOOKING_KEY)["classifier_intent"]["name"] == reading[0]


@pytest.mark.parametrize("text", [
    "never mind, i'll look for it myself",          # a dismissal: the form ends
    "chhodo, khud dhoondh lungi",
    "one sec looking for it. and do you ship to goa",  # a question after the lead is answered
    "hold on, what's an order id?",
    "one sec, it's 40718",                          # the number itself: the form takes it
    "ok will wait",                                 # accepting to wait is an acknowledgement
    "wait that's the wrong size you sent",          # a lead with something else
    "checking my order status",                     # an order question
    "number nahi mil raha, chhodo",                 # session 28: not found and given up is a dismissal
    "number nahi mil raha, kya aap email se dekh sakte ho",  # … or a question
    # session 37: where something is, without a lead, says nothing about looking; a question word outside the
    # searching phrase is still a question; the number put off till later ends the form
    "my parcel is stuck somewhere, it's in my city",
    "one sec, checking my mail. when will it come",
    "nahi mil raha number, baad mein",
    # session 38 (v34): praise that names opening the parcel is no search
    "the box was gorgeous, loved opening it",
    "no luck finding it, let it be",                # the search given up ends the form
    "got it, will ask my sister then",              # session 43 (v44): the answer understood, with a plan
    "great, many thanks for checking on it",        # session 45 (v49): thanks for a check the bot made
    # session 47: a Hindi question word without a lead, or without a search, is still a question; so is one beside
    # "also"; English question words are never lifted
    "cart me kitna hua woh dekhti hu",
    "ruko, kab tak aayega",
    "ek sec, dekhti hu. aur kab tak deliver hoga",
    "hold on, checking my inbox. which courier do you use",
])
def test_other_messages_keep_the_classifiers_reading(tmp_path, text):
    component = make_component(tmp_path)
    message = parsed(component, classified(text, ("deny", 0.9)))
    assert message.get("intent")["name"] == "deny"
    assert not still_looking_entities(message)
    assert message.get(STILL_LOOKING_KEY) is None


@pytest.mark.parametrize("reading", [("request_human", 0.61), ("complaint", 0.81), ("urgent_problem", 0.93)])
def test_a_person_or_a_confident_topic_the_classifier_read_stays(tmp_path, reading):
    component = make_component(tmp_path)
    message = parsed(component, classified("hold on, digging through my mail for it", reading))
    assert message.get("intent")["name"] == reading[0]
    assert not still_looking_entities(message)


def test_a_topic_read_unsure_is_a_misreading(tmp_path):
    # A complaint ranked first at 0.62 with a question close behind was an ambiguous "not sure" hand-off.
    component = make_component(tmp_path)
    message = parsed(component, classified("ek min, mail mein number dhundh raha hu", ("complaint", 0.62),
                                           ("ask_question", 0.55)))
    assert message.get("intent")["name"] == "order_status"
    assert still_looking_entities(message)


def test_a_reaction_is_left_to_the_acknowledgements(tmp_path):
    component = make_component(tmp_path)
    reaction = classified("⏳", ("affirm", 1.0), metadata={"whatsapp": {"type": "reaction"}})
    assert not still_looking_entities(parsed(component, reaction))


def test_long_messages_are_left_alone(tmp_path):
    component = make_component(tmp_path)
    text = "hold on i am searching for it but honestly this whole thing has been so confusing from the start"
    assert component.match(text) is None
    assert component.match("hold on i am searching for it") is not None


def test_without_the_order_intent_in_the_training_data_nothing_changes(tmp_path):
    component = make_component(tmp_path, intents=["greet", "deny"])
    message = component.process([classified("one sec, finding it", ("deny", 0.7))])[0]
    assert message.get("intent")["name"] == "deny"


def edited_settings(tmp_path, change):
    document = yaml.safe_load(open(SETTINGS))
    change(document["still_looking"])
    path = tmp_path / "escalation.yml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    (tmp_path / "model").mkdir()
    return str(path)


@pytest.mark.parametrize("change, complaint", [
    (lambda s: s.pop("intent"), "needs an `intent`"),
    (lambda s: s.update(leads=[]), "leads must list at least one phrase"),
    (lambda s: s.update(searching=None), "searching must list at least one phrase"),
    (lambda s: s.update(max_words=0), "max_words must be a whole number"),
    (lambda s: s.update(filler_words=["ok", True]), "quote it"),
    (lambda s: s.update(keep_topics_from=1.5), "keep_topics_from must be a number from 0 to 1"),
    # session 47: a looked-up word must be one `not_when` has, or it lifts nothing
    (lambda s: s.update(looked_up=["kab", "kaunsa"]), "kaunsa not in `not_when`"),
])
def test_a_designers_mistake_is_a_clear_error(tmp_path, change, complaint):
    with pytest.raises(ValueError, match=complaint):
        make_component(tmp_path / "model", settings=edited_settings(tmp_path, change))


def test_a_designer_can_add_a_lead(tmp_path):
    settings = edited_settings(tmp_path, lambda s: s["leads"].append("thehro"))
    component = make_component(tmp_path / "model", settings=settings)
    assert component.match("thehro ji") == {"lead": "thehro", "searching": ""}


# Session 29: the number found. An order number sent with a few words the classifier could not place fell back
# and was handed off as "not sure" (escalation.yml `still_looking.number_given`).
def with_order_number(message, value):
    text = message.get("text")
    start = text.index(value)
    message.set("entities", [{"entity": "order_number", "value": value, "start": start, "end": start + len(value)}])
    return message


@pytest.mark.parametrize("text, entity", [
    ("here you go 48213", None),                      # a bare number
    ("also #55021 is my second one, same question", "55021"),
    ("bas yahi hai 70314", None),
])
def test_an_order_number_the_classifier_could_not_place_goes_to_the_form(tmp_path, text, entity):
    component = make_component(tmp_path)
    message = classified(text, ("deny", 0.41), ("ask_question", 0.38))
    if entity:
        message = with_order_number(message, entity)
    message = parsed(component, message)
    assert message.get("intent") == {"name": "order_status", "confidence": 1.0}
    assert not still_looking_entities(message)  # the form reads the number, it does not wait
    assert message.get(STILL_LOOKING_KEY) == {"number_given": True, "classifier_intent": {"name": "deny",
                                                                                        "confidence": 0.41}}


# Session 43 (v44, v46, in-sample): said as the number, it is the number even when the classifier is sure of a question
# ("ok the number is 44871" right after a side question was answered inside the form).
@pytest.mark.parametrize("text, reading", [
    ("alright, the number is 58102", ("ask_question", 0.6)),
    ("acha number hai 77419", ("out_of_scope", 0.85)),
    # session 46 (v51, in-sample): found, said with an ok ("ok found it, 58247" was a yes: "Great!")
    ("ah ok found it, 61234", ("affirm", 0.65)),
    ("haan mil gaya, 40917", ("affirm", 0.8)),
    # session 47 (v52, in-sample): the number passed on from whoever has it ("ok she says 69427" was a yes: "Great!")
    ("ok he says 73310", ("affirm", 0.64)),
    ("haan wo bol rahi hai 51842", ("affirm", 0.7)),
])
def test_a_number_said_as_the_number_goes_to_the_form_whatever_the_reading(tmp_path, text, reading):
    component = make_component(tmp_path)
    message = parsed(component, classified(text, reading, ("greet", 0.05)))
    assert message.get("intent") == {"name": "order_status", "confidence": 1.0}
    assert message.get(STILL_LOOKING_KEY)["number_given"] is True


@pytest.mark.parametrize("text, reading", [
    ("the number is 58102, is it shipped?", ("order_status", 0.9)),   # a question: the classifier decides
    ("my total number is 2400 rupees", ("ask_question", 0.8)),        # money
    ("haan order number hai 77419, cancel it", ("cancel_order", 0.95)),  # a sure topic stays
])
def test_a_number_said_as_the_number_in_a_question_money_or_a_topic_is_left_alone(tmp_path, text, reading):
    component = make_component(tmp_path, intents=INTENTS + ["cancel_order"])
    message = component.process([classified(text, reading)])[0]
    assert message.get("intent")["name"] == reading[0]
    assert message.get(STILL_LOOKING_KEY) is None


@pytest.mark.parametrize("text, reading", [
    ("my cart is 2400 now, gst extra", ("ask_question", 0.4)),    # money, not an order number
    ("do you deliver to 560034?", ("ask_question", 0.4)),          # a question
    ("kesar circle points for 3200", ("ask_question", 0.4)),
    ("cancel 48213 please, ordered twice", ("cancel_order", 0.45)),  # a topic with its number is never an order question
    ("got 2 kurtas", ("affirm", 0.45)),                            # no order number
])
def test_other_numbers_are_left_to_the_classifier(tmp_path, text, reading):
    component = make_component(tmp_path, intents=INTENTS + ["cancel_order"])
    message = component.process([classified(text, reading)])[0]
    assert message.get("intent")["name"] == reading[0]
    assert message.get(STILL_LOOKING_KEY) is None


# Session 36 (v32): a yes with a bare number ("ok do it for 86114 please" after the cancellation answer) carried no
# order number entity, so the rule for a yes with an order number (action_go_ahead) never ran. The yes stays a yes and
# the number becomes the entity, at its place in the customer's words.
@pytest.mark.parametrize("text, number", [
    ("ok do it for 86114 please", "86114"),
    ("haan 40021 ke liye kar do", "40021"),
    ("here you go 48213", "48213"),
])
def test_a_yes_with_a_bare_number_carries_it_as_the_order_number(tmp_path, text, number):
    component = make_component(tmp_path)
    message = parsed(component, classified(text, ("affirm", 0.69), ("cancel_order", 0.2)))
    assert message.get("intent")["name"] == "affirm"
    [entity] = [e for e in message.get("entities") if e["entity"] == "order_number"]
    assert entity["value"] == number and text[entity["start"]:entity["end"]] == number
    assert message.get(STILL_LOOKING_KEY)["number_in_a_yes"] == number


@pytest.mark.parametrize("text, reading", [
    ("ok 1850 wala lena hai", ("affirm", 0.8)),            # a price ("wala"), not an order number
    ("yes, total 2400 with gst", ("affirm", 0.8)),         # money
    ("ok 12", ("affirm", 0.9)),                             # too few digits
    ("yes #48213", ("affirm", 0.9)),                        # the entity rules found it already: left as it is
    ("48213 cancel karo", ("cancel_order", 0.9)),            # no yes
])
def test_other_numbers_in_a_yes_stay_as_they_are(tmp_path, text, reading):
    component = make_component(tmp_path, intents=INTENTS + ["cancel_order"])
    message = classified(text, reading)
    if "#" in text:
        message = with_order_number(message, "#48213")
    before = list(message.get("entities") or [])
    message = component.process([message])[0]
    assert message.get("intent")["name"] == reading[0]
    assert (message.get("entities") or []) == before
    assert message.get(STILL_LOOKING_KEY) is None


def test_an_unsure_yes_with_a_number_is_the_number_given(tmp_path):
    # "ok the number is 19457" read as affirm 0.1: the number given (an order question the form or the rule reads),
    # not a yes.
    component = make_component(tmp_path)
    message = parsed(component, classified("ok the number is 19457", ("affirm", 0.1), ("order_status", 0.02)))
    assert message.get("intent") == {"name": "order_status", "confidence": 1.0}
    assert message.get(STILL_LOOKING_KEY)["number_given"] is True


def test_without_yes_intents_a_yes_keeps_its_bare_number_as_text(tmp_path):
    settings = edited_settings(tmp_path, lambda s: s["number_given"].pop("yes_intents"))
    component = make_component(tmp_path / "model", settings=settings)
    message = component.process([classified("ok do it for 86114 please", ("affirm", 0.69))])[0]
    assert not message.get("entities") and message.get(STILL_LOOKING_KEY) is None


@pytest.mark.parametrize("change, complaint", [
    (lambda s: s["number_given"].update(below=2), "number_given.below must be a number from 0 to 1"),
    (lambda s: s["number_given"].update(min_digits=0), "number_given.min_digits must be a whole number"),
    (lambda s: s["number_given"].update(when=["x"]), "unknown key"),
    (lambda s: s.update(number_given=["x"]), "must be a mapping"),
])
def test_a_mistake_in_the_number_rule_is_a_clear_error(tmp_path, change, complaint):
    with pytest.raises(ValueError, match=complaint):
        make_component(tmp_path / "model", settings=edited_settings(tmp_path, change))


def test_the_number_rule_can_be_turned_off(tmp_path):
    settings = edited_settings(tmp_path, lambda s: s.update(number_given=False))
    component = make_component(tmp_path / "model", settings=settings)
    message = component.process([classified("here you go 48213", ("deny", 0.41))])[0]
    assert message.get("intent")["name"] == "deny"


def test_whereabouts_count_only_after_a_lead(tmp_path):
    component = make_component(tmp_path)
    found = component.match("hang on, the printed bill is somewhere in my handbag")
    assert found == {"lead": "hang on", "searching": "", "whereabouts": "somewhere"}
    assert component.match("the printed bill is somewhere in my handbag") is None


def test_a_question_word_inside_the_searching_phrase_is_part_of_the_search(tmp_path):
    component = make_component(tmp_path)
    assert component.match("one min, checking when it got delivered") is not None
    assert component.match("one min, when did it get delivered") is None
    # session 42: a past date said as what is being checked; "which phone it" as what is looked up
    assert component.match("ek sec, delivery kab hui thi woh check kar raha hu") is not None
    assert component.match("ek sec, delivery kab hogi?") is None
    assert component.match("let me see which phone it was booked from") is not None
    assert component.match("which phone number do i enter on the track page") is None
    assert component.match("which phone it uses for the otp?") is None


def dismissals(message):
    return [e for e in message.get("entities") or [] if e["entity"] == "dismissal"]


@pytest.mark.parametrize("text, reading", [
    # session 40 (v39, in-sample): the number put off till later, said instead of it; read as off-brand, "not sure"
    # or an order question, which kept the form waiting or handed off
    ("hmm its on my work laptop, will send it once im back home tonight", ("out_of_scope", 0.6)),
    ("kal subah bhejti hu number, abhi market mein hu", ("nlu_fallback", 0.4)),
    ("it's on my son's phone, i'll get it from him later", ("order_status", 0.7)),
    ("can't find it rn, will ping again later", ("deny", 0.9)),
    ("office mein hu, raat ko share karungi", ("affirm", 0.55)),
    ("kal subah bhejti hu number, abhi bahar hu", ("goodbye", 0.62)),   # an unsure goodbye
    # session 41 (v41, in-sample): telling it later ("baad me bata dungi"), read as off-brand
    ("number mummy ke phone me hai, shaam ko bata dungi", ("out_of_scope", 0.65)),
    ("don't have it on me, will let you know tomorrow", ("nlu_fallback", 0.4)),
    # session 43 (v45, in-sample): looking it up at home later, read as the order's status (the form asked again)
    ("bahar hu abhi, ghar jaake order id dekhungi", ("order_status", 0.65)),
    ("on the metro rn, will check the number after work", ("ask_question", 0.5)),
    # session 45 (v48, in-sample): "we'll see later", read as a goodbye
    ("number abhi pass nahi hai, baad me dekhenge", ("goodbye", 0.65)),
    # session 46 (v50, in-sample): coming back with it later (fell back)
    ("it's buried somewhere in my mails, will get back to you later", ("nlu_fallback", 0.5)),
    # session 46 (v51, in-sample): "will msg" (read as a goodbye)
    ("don't have it with me now, will msg tonight", ("goodbye", 0.64)),
    # session 49 (v56, in-sample): looked up at home in the Hinglish present (the form asked again); coming back to it
    # later ("return" inside the promise is no parcel sent back; answered from contact_support)
    ("number abhi paas nahi hai, ghar pahunch ke dekhta hu", ("order_status", 1.0)),
    ("the number's in an email i can't open now, will return to it later", ("ask_question", 0.71)),
])
def test_the_number_put_off_till_later_ends_the_form_as_a_dismissal(tmp_path, text, reading):
    component = make_component(tmp_path)
    message = parsed(component, classified(text, reading, ("greet", 0.05)))
    assert message.get("intent") == {"name": "deny", "confidence": 1.0}
    assert len(dismissals(message)) == 1 and not still_looking_entities(message)
    found = message.get(STILL_LOOKING_KEY)
    assert found["put_off"] and found["later"] and found["classifier_intent"]["name"] == reading[0]


@pytest.mark.parametrize("text, reading", [
    ("will send it later, when will my parcel come?", ("order_status", 0.8)),   # a question after it
    ("great, will drop them a mail tomorrow", ("affirm", 0.95)),                # a mail to the team: a plan
    ("i'll send the parcel back tomorrow", ("ask_question", 0.7)),              # the parcel, not the number
    ("leaving now, will ping you later", ("goodbye", 0.9)),                     # a goodbye ends the form too
    ("will send it later, order 40718", ("order_status", 0.9)),                 # the number is here
    ("i'll send it later", ("request_human", 0.7)),                              # a person stays
    ("will return it tomorrow, how do i book the pickup", ("ask_question", 0.8)),  # session 49: a return, asked
    ("i'll return the kurta later", ("ask_question", 0.7)),                      # the parcel sent back
])
def test_other_promises_keep_the_classifiers_reading(tmp_path, text, reading):
    component = make_component(tmp_path)
    message = parsed(component, classified(text, reading, ("greet", 0.05)))
    assert message.get("intent")["name"] == reading[0]
    assert not dismissals(message)


def test_the_put_off_rule_can_be_turned_off_and_a_mistake_is_a_clear_error(tmp_path):
    settings = yaml.safe_load(open(SETTINGS, encoding="utf-8"))
    settings["still_looking"]["put_off"] = False
    path = tmp_path / "off.yml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    component = make_component(tmp_path / "a", settings=str(path))
    message = parsed(component, classified("kal subah bhejti hu number", ("out_of_scope", 0.9)))
    assert message.get("intent")["name"] == "out_of_scope" and not dismissals(message)
    settings["still_looking"]["put_off"] = {"intent": "deny", "promises": ["will send"], "later": [], "soon": [1]}
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown key"):
        make_component(tmp_path / "b", settings=str(path))
