"""Pattern 2: requests for a person win over the classifier; look-alikes don't."""
from __future__ import annotations

import pytest
import yaml
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.settings import PROJECT_ROOT
from components.human_request import HumanRequestMatcher
from components.keyword_escalation import DECLINED_KEY, MATCH_KEY, QUESTION_KEY, KeywordEscalation

SETTINGS = str(PROJECT_ROOT / "escalation.yml")


@pytest.fixture(scope="module")
def matcher():
    return HumanRequestMatcher(yaml.safe_load(open(SETTINGS))["human_request"])


@pytest.mark.parametrize(
    "text",
    ["human", "agent please", "AGENT!!", "agent", "speak to someone", "I want to talk to a real person pls",
     "kisi insaan se baat karni hai", "agent se baat karao", "customer care please", "Representative.",
     # a call from the team, a person instead of the bot, "I need an agent for …", Hinglish "banda"
     "would someone from your team call me this evening?", "put me through to your team instead of the bot",
     "could I speak with a person about a payment?", "I need an agent to look into a wrong charge",
     "bhai real banda bhejo", "this is going nowhere, let me talk to your team",
     # shouted or clipped, alone or inside a longer message
     "PERSON NEEDED HERE!!", "hi?? agent required urgently", "parcel lost, need human", "REFUND ISSUE. AGENT PLS",
     # asking in Hinglish to be phoned by the team
     "shaam ko koi mujhe call kar lena, exchange ka samjhana hai", "return ke liye call back karo please",
     "type nahi ho raha, phone karwa do",
     # session 23: being passed on in other words, a call asked for to have something explained
     "can you patch me through to someone who handles bulk orders", "pass me on to your staff please",
     "papa ko samajh nahi aa raha, koi call karke bata sakta hai?",
     # session 25: typing named in a request is still a request
     "tired of typing this again and again, i want to talk to a person", "i can't keep typing, connect me to an agent",
     # session 26: a person from the team named by who they are, even when the rest is a question
     "could somebody from your team look at why my coupon fails?", "pls loop in support, the app keeps crashing at payment",
     "get someone to ring my mother, she wants to order but can't type", "team se koi dekh lo mera case",
     "could one of your colleagues take over this chat?", "koi staff member hai jo ye samjha sake",
     "can someone phone my uncle about the bulk order", "kisi dusre se baat ho sakti hai kya",
     # session 27: "connect karo" after whoever is named
     "jo bhi wahan baitha hai usse connect kar do please",
     # session 28: a real person in Hinglish words
     "koi asli banda available hai kya? usi se baat karunga", "mujhe apne staff ke kisi bande se baat karwa do",
     # session 29: a person asked for in other words (a named helper again, a stylist, a call on WhatsApp)
     "aapke office ke kisi aadmi se baat ho sakti hai?", "neha helped me last week, can i talk to her again",
     "is there a live executive i can chat with", "can someone from your staff look into this",
     "papa ko size chart call pe samjha dijiye", "koi mujhe video call kar sakta hai kya",
     # session 31: a person asked for by role or in a word of the customer's own
     "aapke head office mein kisi senior se baat karwa do", "owner se baat ho payegi kya mujhe?",
     "koi zinda banda hai wahan? kab se likh rahi hu", "just hand me over to whoever handles returns",
     "can one of your people look at my case",
     # session 31 (v25, in-sample): a call from one of the team
     "could one of them phone me about the bulk order instead",
     # session 33 (v26, in-sample): a person asked for by a role, as someone of a team, as support by a person,
     # brought in after the bot said it is one
     "can i get the email of your nodal officer, i want to escalate", "support team ki koi ladki hai jo samjha de?",
     "insaan wali help chahiye thi bhai", "fine, bring someone in who can actually check",
     # session 34 (v28, in-sample): a person asked for by what they do, someone of a department to speak with
     "put me on to the person who approves exchanges", "is there a person in charge of deliveries i can write to",
     "somebody from your warehouse team i could speak to?", "any skincare expert on staff i could ask directly?",
     # session 34 (v29, in-sample): a department or desk, the top of the company, someone sent
     "please connect me to your accounts team about a gst invoice", "escalation desk ka number ya banda chahiye",
     "meri shikayat founder se baat karke hi suljhegi", "english nahi aati, gujarati wala koi bhejo",
     # session 35 (v30, in-sample): someone of a department, the owner, a word with whoever runs things, an employee,
     # a stylist to chat with, a real man
     "refund walon mein se koi mil sakta hai?", "company ke maalik se milwa dijiye", "i'd like a word with someone up top",
     "please put an actual employee on this chat", "any fashion adviser i can chat with before buying?",
     "koi asli aadmi hai wahan?",
     # session 35 (v31, in-sample): a person with a name to speak to
     "anyone with an actual name i can speak to today?",
     # session 36 (v32, in-sample): talking to the brand's people "directly", someone who speaks the customer's language
     "who runs this company? i want to talk to them directly", "is there someone who speaks tamil, typing is hard",
     # session 37 (v33, in-sample): the founder "directly", a human being wanted beside a bot question, the support
     # head, a sales rep to ring about a big order
     "who started this brand? i'd like to speak to him directly", "bot ho kya? mujhe koi human being chahiye",
     "get me the head of support please", "could a sales rep ring me about a 500 piece order?",
     # session 38 (v34, v35, in-sample): a designer, the warehouse manager looped in, "a person i mean", "put me
     # through" on its own, someone real, a woman on the team
     "ek designer se baat ho sakti hai? lehenga customise karna hai", "please loop in your warehouse manager",
     "hello?? is anyone there, a human i mean", "just put me through", "chatbot? then i need someone real",
     "koi lady staff se baat karwa do"],
)
def test_requests_for_a_person_match(matcher, text):
    assert matcher.match(text) is not None


@pytest.mark.parametrize(
    "text",
    ["Do you sell human hair extensions?", "my travel agent wants a bulk order", "are you a human?",
     "am i talking to a real person?", "what is your return policy", "agents", "customer care number kya hai",
     "the delivery agent was rude", "",
     # questions about support hours, and Hinglish bot challenges, only look like requests
     "what are the customer care hours on saturday", "customer care ka email kya hai", "aap machine ho ya insaan?", "when is your team online",
     "yahan koi banda type kar raha hai kya", "is this reply automated or a real person?",
     # "am I <verb>ing with a real person?" is a question about the bot, whatever the verb
     "am I speaking with a real human?", "r u a real person", "texting an actual human here or what",
     "kya meri kisi insaan se baat ho rahi hai?",
     # … or whether a person types the replies (session 25)
     "is a real person typing these answers or is it a program", "is some human typing this", "real human typing or automated?",
     # session 31 (v25, in-sample): who writes the replies, asked in Hinglish
     "ye reply software likh raha hai ya koi insaan hai wahan?",
     # being phoned by the courier is no request for the team
     "delivery wala mujhe call karega kya pehle", "mujhe call mat karo, yahin message karo",
     # session 26: "need someone" / "have someone" alone are questions about a person, not requests
     "do i need someone at home to sign for the parcel?", "do you have someone who does alterations?",
     # session 37: a role named without asking for contact is a question about it
     "does your sales team handle corporate gifting?", "is the lotion safe for every human being?",
     # session 38 (v34): the courier asked to ring before coming is a delivery question
     "can the courier give me a call before he comes?",
     # session 41 (v40): whether a person or an auto-reply is on the other side
     "a real human replying here, or an autoreply?"],
)
def test_look_alikes_do_not_match(matcher, text):
    assert matcher.match(text) is None


# A request the customer turns down is not a request (escalation.yml `human_request.declined`).
@pytest.mark.parametrize(
    "text, declined_phrase",
    [("not looking to talk to a person, how do I pick my size?", "talk to a person"),
     ("no human please, only tell me COD charges", "human please"),
     ("agent nahi chahiye, bas return policy batao", "agent"),
     ("don't want an agent, just tell me how long delivery takes", "want an agent"),
     ("I do not need to speak to someone, just tell me the COD charges", "speak to someone"),
     ("kisi insaan se baat nahi karni, bas size batao", "kisi insaan se baat"),
     ("no need for an agent, what is your return policy", "agent"),
     # a bare "don't" right before the request declines it too
     ("i dont need a human, what are the COD charges", "need a human"),
     ("please don't connect me to a human, is the serum vegan?", "connect me to a human"),
     # a phrase that starts with a keyword is declined like the keyword
     ("no agent needed, do you ship to Pune?", "agent needed"),
     ("agent pls nahi, bas size chart bhejo", "agent pls"),
     # session 23's phrases are declined like the others
     ("no need to patch me through, just tell me the exchange fee", "patch me through"),
     # and session 26's
     ("no need to loop in anyone, just share the size chart", "loop in"),
     # session 36 (v32, in-sample): no call for a person, in Hinglish ("ka koi kaam nahi", "bulane ki zarurat nahi")
     ("agent ko bulane ka koi kaam nahi, cod ka charge batao", "agent"),
     ("insaan bulane ki koi zarurat nahi, bas size chart bhejo", "insaan")],
)
def test_declined_requests_do_not_match(matcher, text, declined_phrase):
    assert matcher.match(text) is None
    assert [d.phrase for d in matcher.declined(text)] == [declined_phrase]


# Genuine requests that contain a negation still hand off.
@pytest.mark.parametrize(
    "text",
    ["I don't want to talk to a bot, get me a person", "bot nahi, insaan chahiye", "no, talk to a human",
     "no talk to a human", "i dont want a bot i want a human", "insaan se baat karni hai, bot nahi",
     "agent se baat karao nahi to complaint karungi", "why not connect me to an agent",
     "this is not helping talk to a human", "agent chahiye na", "why don't you connect me to an agent"],
)
def test_requests_next_to_a_negation_still_match(matcher, text):
    assert matcher.match(text) is not None


def test_a_bare_no_in_a_list_is_a_clear_error():
    section = yaml.safe_load(open(SETTINGS))["human_request"]
    section["declined"]["before_keyword_only"] = [False]
    with pytest.raises(ValueError, match="declined.before_keyword_only.*quote it"):
        HumanRequestMatcher(section)


def make_component(tmp_path, intents):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("keyword_escalation")
    context = ExecutionContext(graph_schema=None, model_id="test")
    component = KeywordEscalation.create({"settings_path": SETTINGS}, storage, resource, context)
    training = TrainingData([Message(data={"text": f"example {i}", "intent": i}) for i in intents])
    component.train(training)
    return KeywordEscalation.load({"settings_path": SETTINGS}, storage, resource, context)


def classified(text, intent="ask_question", confidence=0.97):
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence},
                                   {"name": "request_human", "confidence": 0.02}])
    return message


def test_override_beats_a_confident_classifier(tmp_path):
    component = make_component(tmp_path, ["ask_question", "request_human"])
    [message] = component.process([classified("ok, agent please")])
    assert message.get("intent") == {"name": "request_human", "confidence": 1.0}
    ranking = message.get("intent_ranking")
    assert ranking[0]["name"] == "request_human" and ranking[1]["confidence"] == 0.0
    assert message.get(MATCH_KEY)["classifier_intent"]["name"] == "ask_question"


def test_look_alike_keeps_the_classifier_result(tmp_path):
    component = make_component(tmp_path, ["ask_question", "request_human"])
    [message] = component.process([classified("Do you sell human hair extensions?")])
    assert message.get("intent")["name"] == "ask_question"


def test_does_nothing_when_trained_without_the_intent(tmp_path):
    component = make_component(tmp_path, ["alarm_set", "weather_query"])
    [message] = component.process([classified("agent please", intent="weather_query")])
    assert message.get("intent")["name"] == "weather_query"


def test_a_declined_request_is_kept_from_the_classifier(tmp_path):
    component = make_component(tmp_path, ["ask_question", "request_human"])
    message = classified("no human please, only tell me COD charges", intent="request_human", confidence=0.67)
    message.set("intent_ranking", [{"name": "request_human", "confidence": 0.67},
                                   {"name": "ask_question", "confidence": 0.62}])
    [message] = component.process([message])
    assert message.get("intent") == {"name": "ask_question", "confidence": 0.62}
    assert [e["name"] for e in message.get("intent_ranking")] == ["ask_question", "request_human"]
    assert message.get(DECLINED_KEY)["cue"] == "no"
    assert message.get(QUESTION_KEY) == "only tell me COD charges"  # what the knowledge base searches


def test_a_declined_request_leaves_another_intent_alone(tmp_path):
    component = make_component(tmp_path, ["ask_question", "request_human"])
    [message] = component.process([classified("agent nahi chahiye, bas return policy batao", confidence=0.87)])
    assert message.get("intent") == {"name": "ask_question", "confidence": 0.87}
    assert message.get(QUESTION_KEY) == "bas return policy batao"


def test_a_declined_request_is_no_close_runner_up(tmp_path):
    # The classifier put the question first and the declined request right behind it: left there, the
    # two would be within FallbackClassifier's ambiguity threshold (0.1) and the question handed off.
    component = make_component(tmp_path, ["ask_question", "request_human"])
    message = classified("no need to talk to an agent, just tell me the exchange policy", confidence=0.69)
    message.set("intent_ranking", [{"name": "ask_question", "confidence": 0.69},
                                   {"name": "request_human", "confidence": 0.68},
                                   {"name": "complaint", "confidence": 0.2}])
    [message] = component.process([message])
    assert message.get("intent") == {"name": "ask_question", "confidence": 0.69}
    assert message.get("intent_ranking") == [{"name": "ask_question", "confidence": 0.69},
                                             {"name": "complaint", "confidence": 0.2},
                                             {"name": "request_human", "confidence": 0.0}]
    assert message.get(DECLINED_KEY)["phrase"] == "talk to an agent"
    assert message.get(QUESTION_KEY) == "just tell me the exchange policy"


def test_escalation_settings_env_names_the_file_like_for_the_actions(tmp_path, monkeypatch):
    # config.yml leaves settings_path at its default: ESCALATION_SETTINGS then picks the designer's file.
    document = yaml.safe_load(open(SETTINGS))
    document["human_request"]["phrases"].append("bring the boss")
    edited = tmp_path / "escalation.yml"
    edited.write_text(yaml.safe_dump(document, allow_unicode=True))
    monkeypatch.setenv("ESCALATION_SETTINGS", str(edited))
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")
    component = KeywordEscalation.create(KeywordEscalation.get_default_config(), storage, Resource("k"), context)
    component.train(TrainingData([Message(data={"text": f"example {i}", "intent": i})
                                  for i in ["ask_question", "request_human"]]))
    [message] = component.process([classified("bring the boss")])
    assert message.get("intent")["name"] == "request_human"
    monkeypatch.delenv("ESCALATION_SETTINGS")
    default = KeywordEscalation.create(KeywordEscalation.get_default_config(), storage, Resource("k2"), context)
    assert default._matcher.match("bring the boss") is None


# A name of the team ("customer care", "customer support") is a request only when the message asks for
# contact or is little more than the name (escalation.yml `human_request.team_names`, `asking_words`).
@pytest.mark.parametrize(
    "text",
    ["customer care se baat karni hai", "connect me to customer care", "customer care please!!",
     "pls transfer me to customer service", "I want customer support right now", "customer care executive chahiye",
     "put me through to the support team", "mujhe helpline wale se baat karwao", "hand me over to customer care",
     "customer care wale ko bulao yaar", "Representative."],
)
def test_a_team_name_with_a_request_still_hands_off(matcher, text):
    assert matcher.match(text) is not None


@pytest.mark.parametrize(
    "text",
    ["is customer care open on sundays?", "until when does customer support answer on weekdays",
     "customer service ka phone number batao", "support team ka mail id?", "how do I contact customer care",
     "do you have a helpline in hindi"],
)
def test_a_question_about_the_team_is_not_a_request(matcher, text):
    assert matcher.match(text) is None


# The ask has to be in the name's clause: a "want" or "need" about something else does not turn a question
# for the team's address into a request for a person (session 29).
@pytest.mark.parametrize(
    "text",
    ["which email does the customer care team read? i need to send them photos of the stain",
     "helpline ka number do, mujhe bill ki copy chahiye"],
)
def test_an_ask_in_another_clause_does_not_make_a_request(matcher, text):
    assert matcher.match(text) is None


def test_an_ask_in_the_names_own_clause_still_hands_off(matcher):
    assert matcher.match("the zip broke on day one, i need customer care now") is not None


def test_a_declined_team_name_is_declined(matcher):
    assert matcher.match("customer care se baat nahi karni, bas exchange ka process batao") is None
    assert [d.phrase for d in matcher.declined("customer care se baat nahi karni, bas exchange ka process batao")] \
        == ["customer care"]


def test_team_names_need_asking_words():
    section = yaml.safe_load(open(SETTINGS))["human_request"]
    with pytest.raises(ValueError, match="asking_words"):
        HumanRequestMatcher({**section, "asking_words": []})


# Session 35: people named by their role count like the team's names: with an asking word in their clause they are a
# request for a person, without one a question about them.
@pytest.mark.parametrize(
    "text",
    ["is there a stylist i could have a chat with about a lehenga", "shop ke maalik se milwa do please",
     "koi senior banda hai jisse baat ho sake", "connect me to the skincare expert", "supervisor se baat karwao"],
)
def test_a_role_with_a_request_hands_off(matcher, text):
    assert matcher.match(text) is not None


@pytest.mark.parametrize(
    "text",
    ["is your founder a woman?", "which stylist put this collection together", "do your experts test serums on skin?",
     "no need to escalate to a manager, just tell me the mail id", "mera banda size M pehenta hai, kaunsa lu?"],
)
def test_a_role_without_a_request_is_not_one(matcher, text):
    assert matcher.match(text) is None


# Session 41 (v40, v41, in-sample): a team lead or a department asked for, a person preferred to the bot, someone who
# speaks the customer's language, a role named and then asked for by a pronoun.
@pytest.mark.parametrize(
    "text",
    ["put me through to your team leader please", "i'd like to speak to the accounts department",
     "honestly i'd prefer a human looks at this", "koi Marathi me baat karne wala milega kya?",
     "koi tailor hai jo fitting samjha sake? usse baat karni hai", "koi expert hai? unse connect kar do"],
)
def test_a_lead_a_department_or_a_person_preferred_hands_off(matcher, text):
    assert matcher.match(text) is not None


@pytest.mark.parametrize(
    "text",
    ["which department handles bulk orders?", "do you prefer people to pay by upi?",
     "no need for your team lead, just tell me the return window"],
)
def test_a_department_or_a_preference_without_a_request_is_not_one(matcher, text):
    assert matcher.match(text) is None


# Session 42 (v42-v44, in-sample): the tech or billing side asked for or brought in, someone who speaks the customer's
# language ("… bolne wala"), an explanation preferred in another language, someone "from ur" team, a matter to discuss,
# "kisi se baat kar sakti hu?". Named without a request, or in a question whether a system or a person is typing, they
# are no request.
@pytest.mark.parametrize(
    "text",
    ["order page khul hi nahi raha, koi tech wala banda hai kya?", "payment fail ho raha, tech team se baat karwao",
     "billing team se baat karni hai, invoice me naam galat hai", "accounts wale ko bulao please",
     "koi gujarati bolne wala hai aapke yahan?", "I'm more comfortable explaining this in bengali",
     "can somebody from ur returns team check this", "i want to discuss a bulk order for my boutique",
     "kya main aapki team me kisi se baat kar sakta hu?"],
)
def test_the_tech_or_billing_side_a_language_or_a_matter_to_discuss_hands_off(matcher, text):
    assert matcher.match(text) is not None


@pytest.mark.parametrize(
    "text",
    ["does the billing team send a gst invoice with every order?", "koi banda hai udhar ya sab automatic hai",
     "is the tech team working on the app crash?", "is this a bot reply or an actual staff member writing",
     "can i share the size chart with someone at home"],
)
def test_the_same_words_without_a_request_are_not_one(matcher, text):
    assert matcher.match(text) is None


# Session 43 (v45, in-sample): a choice between a machine and a person asks what the bot is ("is this automated or
# is there a staff member reading?"), even when the person side is a request phrase ("actual person", "staff member").
@pytest.mark.parametrize(
    "text",
    ["are these replies coming from an actual person or some software?", "is it automated or a staff member typing",
     "real person hai ya koi program chal raha hai?", "am i chatting with a real human, or with a chatbot?",
     "Is this a machine, or someone from your team answering?"],
)
def test_a_choice_between_a_machine_and_a_person_is_no_request(matcher, text):
    assert matcher.match(text) is None
    assert matcher.declined(text) == []


@pytest.mark.parametrize(
    "text",
    ["is this a chatbot or what? connect me to an agent", "ye automatic hai ya kya? mujhe kisi insaan se baat karni hai",
     "the automated replies are useless, i want to speak to someone", "talk to a human or call me back please"],
)
def test_a_request_beside_a_machine_word_still_hands_off(matcher, text):
    assert matcher.match(text) is not None


def test_bot_questions_need_both_word_lists_and_a_whole_window():
    section = yaml.safe_load(open(SETTINGS))["human_request"]
    section["bot_questions"] = {"machine_words": ["bot"]}
    with pytest.raises(ValueError, match="bot_questions needs both"):
        HumanRequestMatcher(section)
    section["bot_questions"] = {"machine_words": ["bot"], "choice_words": ["or"], "within_words": "three"}
    with pytest.raises(ValueError, match="within_words must be a whole number"):
        HumanRequestMatcher(section)


# Session 43 (v45, in-sample): someone who speaks the customer's language, and someone technical, asked for.
@pytest.mark.parametrize(
    "text",
    ["mujhe english theek se nahi aati, koi gujarati wala mil jayega?", "any odia speaker in your support team?",
     "kisi punjabi me baat karne wale se connect kara do", "can somebody technical look at why checkout keeps failing",
     # … and (v46) the website team, a technical person in Hinglish
     "pass this to your website team please, checkout keeps failing", "login nahi ho raha, koi technical banda dekh lo"],
)
def test_someone_who_speaks_the_language_or_someone_technical_hands_off(matcher, text):
    assert matcher.match(text) is not None


# Session 44 (v47, in-sample): someone who can sort it out, a department's person asked for, someone brought ("bula
# do"), a staff member in Hindi, someone who understands the language.
@pytest.mark.parametrize(
    "text",
    ["is there anyone there who can fix my payment issue", "connect me to your returns team please",
     "i need someone from your logistics side to call me", "kisi senior ko bula do please",
     "kisi karmachari se baat karni hai", "marathi samajhne wala chahiye please"],
)
def test_someone_who_can_sort_it_out_or_understands_the_language_hands_off(matcher, text):
    assert matcher.match(text) is not None


# Session 45 (v48, in-sample): someone who can do it ("koi hai jo …"), the warehouse's people, someone sent ("banda
# bhejo"), someone who speaks the language.
@pytest.mark.parametrize(
    "text",
    ["checkout kaam nahi kar raha, koi hai jo dekh sake?", "mujhe warehouse wale staff se connect karwa do",
     "koi samajhne wala banda bhejo yaar", "anybody in your team who speaks telugu? my mother is more at ease in it",
     # session 45 (v49, in-sample): whoever does a job, a human from a team, the dispatch or quality side, a store
     # manager
     "connect me to whoever handles exchanges", "can a human from billing check this",
     "dispatch section wale logon se baat karni hai", "a store manager please",
     # session 46 (v50, in-sample): an agent "put on" the chat (read as urgent), a specialist asked to help (answered)
     "this is taking too long, put a human on this chat now", "can a fabric expert help me out here?",
     # session 46 (v51, in-sample): whoever does a job spoken to, an agent "onto" the chat, a supervisor "on the line",
     # a Telugu speaker asked for in Telugu
     "could i talk to whoever writes your product descriptions?", "please get someone onto this chat",
     "can i get a supervisor on the line", "Telugu lo matladevaru evaraina unnara?",
     # session 47 (v52, in-sample): somebody connected, someone from dispatch, a Marathi speaker asked for in Marathi,
     # anyone who can talk "to me in" a language
     "order 40117, please connect me with somebody about it", "can somebody from dispatch talk to me",
     "Gujarati madhe bolnara koni aahe ka?", "anyone who can speak to me in Kannada? my english is weak",
     # session 47 (v53, in-sample): asked in Bengali, Gujarati and Kannada; someone on the chat; a teammate by name
     "Bangla te kotha bolte pare emon keu ache?", "Gujarati ma vaat kare evu koi che?",
     "Kannada alli matadoru yaradru idira?", "order 50211 ke liye koi chat pe aaye please",
     "is Meena from your team available today?",
     # session 48 (v54, in-sample): someone fetched from a team; a Malayalam speaker asked for in Malayalam
     "order 61530, can you get somebody from the packing team to check it", "Malayalam ariyunna aarelum undo?",
     # session 48 (v55, in-sample): Marathi, Punjabi and Assamese speakers asked in those languages; a living person
     "Marathi bolnari koni aahe ka?", "Punjabi vich gal kar sakda koi hai?", "Axomiya kobo para kunuba ase?",
     "ab toh kisi jeete jaagte insaan se baat karao",
     # session 49 (v56, in-sample): Bengali and Odia speakers asked in those languages (off-brand, fell back); a person
     # asked to explain, a team "on the line"
     "Bangla bolte pare erokom kew ache?", "Odia re katha heba lok achanti?",
     "ye mamla main kisi insaan ko hi samjhaungi", "order 70211, get your quality team on the line please",
     # session 49 (v57, in-sample): Telugu and Kannada speakers asked in new words (off-brand); a person to confirm with,
     # someone brought onto the chat (read as an ok), a real staffer (fell back)
     "Telugu lo matladagala vallu unnara?", "Kannada maathaadoru yaaru iddare?",
     "ek baar kisi insaan se confirm karna hai", "koi banda chat pe lao please", "i only trust a real staffer with this",
     # session 50 (v58, in-sample): a Tamil speaker asked in Tamil (off-brand), something to be checked by a person (read as
     # a complaint)
     "Tamil la pesa yaaru irukkanga?", "exchange ka status kisi insaan se check karwa do",
     # session 50 (v59, in-sample): the Bengali "… bhashay kotha …" (read as off-brand)
     "Bangla bhashay kotha bolar keu achen?"],
)
def test_someone_who_can_do_it_or_is_sent_hands_off(matcher, text):
    assert matcher.match(text) is not None


# Session 49 (v56, in-sample): a teammate asked for by name ("can i speak to Farhan?" fell back, "Meenal ma'am se baat
# karni hai" was read as a complaint; the same class in v53-v55). Names are not listed: a capitalised word right after
# "speak to" and the like, or right before "se baat karni" and the like.
@pytest.mark.parametrize(
    "text, phrase",
    [("can i speak to Rohini? she helped me with a return before", "speak to rohini"),
     ("please connect me with Arjun, he knows my order", "connect me with arjun"),
     ("Kavya ma'am se baat karni hai please", "kavya maam se baat karni"),
     ("mujhe Sandeep bhaiya se hi baat karni hai", "sandeep bhaiya se hi baat")],
)
def test_a_teammate_asked_for_by_name_hands_off(matcher, text, phrase):
    found = matcher.match(text)
    assert (found.rule, found.phrase) == ("named_person", phrase)


@pytest.mark.parametrize(
    "text",
    ["can i talk to you about sizes?",                              # no name
     "let me talk to Priya, she placed the order",                 # someone of the customer's own
     "ok i'll speak to Rahul and get back to you",
     "Riya se baat hui thi, usne bola exchange ho jayega",         # a talk told of, not asked for
     "my friend Farhana loved the kurta, can i gift her one?",     # a name, nothing asked
     "can i speak to Hindi me?"],                                  # a language is no name
)
def test_a_name_without_a_request_for_that_person_is_no_request(matcher, text):
    found = matcher.match(text)
    assert found is None or found.rule != "named_person"


# Session 50 (v57, v58, in-sample): a teammate asked after as being there ("is Tanvi there today?", "Rohan sir available
# hai?": fell back or read as off-brand). A name before "there", "working", "online hai" and the like, with an honorific
# between or "is" before it, and nothing after but words like "today" or "abhi".
@pytest.mark.parametrize(
    "text, phrase",
    [("is Nandini working today?", "nandini working"),
     ("Is Kabir there right now?", "kabir there"),
     ("Pooja ma'am online hain kya?", "pooja maam online hain"),
     ("Vikram sir available hai aaj?", "vikram sir available hai"),
     # session 50 (v59, in-sample): a time word or a team between the name and the phrase (fell back)
     ("Farida didi abhi online hai kya?", "farida didi abhi online hai"),
     ("is Arjun from customer care around today?", "arjun from customer care around")],
)
def test_a_teammate_asked_after_as_being_there_hands_off(matcher, text, phrase):
    found = matcher.match(text)
    assert (found.rule, found.phrase) == ("named_person", phrase)


@pytest.mark.parametrize(
    "text",
    ["Chanderi available hai?",                  # a product written with a capital: "available" needs an honorific
     "is Banarasi available in red?",
     "is Chanderi there in XL?",                 # what follows asks after a thing
     "is Sunday working for deliveries?",
     "is Sunday working?",                       # a day, an app: no names
     "is Paytm working now?",
     "Anjali online hai kya?"],                  # no honorific, no "is": the classifier decides
)
def test_a_thing_asked_after_as_there_is_no_teammate(matcher, text):
    found = matcher.match(text)
    assert found is None or found.rule != "named_person"


def test_present_must_be_a_mapping():
    section = yaml.safe_load(open(SETTINGS))["human_request"]
    section["named_people"]["present"] = ["there"]
    with pytest.raises(ValueError, match="named_people.present must be a mapping"):
        HumanRequestMatcher(section)


def test_a_teammate_asked_for_by_name_can_be_declined(matcher):
    assert matcher.match("no need to talk to Farhan, just tell me the COD charges") is None


def test_named_people_is_a_mapping_and_can_be_left_out():
    section = yaml.safe_load(open(SETTINGS))["human_request"]
    section["named_people"] = ["speak to"]
    with pytest.raises(ValueError, match="named_people must be a mapping"):
        HumanRequestMatcher(section)
    del section["named_people"]
    assert HumanRequestMatcher(section).match("can i speak to Farhan?") is None


@pytest.mark.parametrize(
    "text",
    ["support team ka email id bhejo na", "koi product hai jo dry skin pe suit kare?",
     "courier wala bola warehouse wale hi batayenge"],
)
def test_an_address_asked_for_or_a_product_is_no_request(matcher, text):
    assert matcher.match(text) is None


@pytest.mark.parametrize(
    "text",
    ["are you hiring? i'd like to apply for a job in your design team", "hindi samajhne wali saree chahiye"],
)
def test_a_team_or_a_language_named_without_asking_for_a_person_is_no_request(matcher, text):
    assert matcher.match(text) is None


# Session 47 (v52, in-sample): who writes the replies, asked with the Hindi "ki" for "or" ("ye jawab machine likhti hai
# ki team ka koi banda?" was a request for a person at 1.00). Listed in `not_requests`: the classifier decides.
@pytest.mark.parametrize("text", ["ye reply software likhta hai ki aapki team ka koi banda?",
                                  "jawab bot de raha hai ki team ka koi insaan?"])
def test_who_writes_the_replies_asked_with_ki_is_no_request(matcher, text):
    assert matcher.match(text) is None


@pytest.mark.parametrize(
    "text",
    ["koi gujarati wali bandhani saree hai stock me?", "can you translate the care label into malayalam for me",
     "is the size chart available in hindi", "no need for a malayalam speaker, just tell me the COD charges"],
)
def test_a_language_without_a_person_is_no_request(matcher, text):
    assert matcher.match(text) is None


# Session 47 (v52, in-sample): whether the own order has left, asked with the occasion far off and urgency denied, was
# read as urgent (0.62) and handed off as "not sure"; the rule now decides over an urgent reading, and urgency said in so
# many words keeps it.
def test_whether_my_order_left_replaces_an_urgent_reading_unless_urgency_is_said(tmp_path):
    component = make_component(tmp_path, ["ask_question", "request_human", "order_status", "urgent_problem"])
    calm, hurried = component.process([
        classified("maine ek kurta mangwaya hai, koi jaldi nahi, bas dekhna tha dispatch hua ki nahi",
                   intent="urgent_problem", confidence=0.62),
        classified("maine ek kurta mangwaya hai, urgent hai, dispatch hua ki nahi", intent="urgent_problem",
                   confidence=0.62),
    ])
    assert calm.get("intent") == {"name": "order_status", "confidence": 1.0}
    assert hurried.get("intent")["name"] == "urgent_problem"
