"""The connector's side of contracts/handoff.yml: the hand-off it writes when the bot could not answer."""
from __future__ import annotations

from rasa.shared.core.events import BotUttered, ConversationPaused, SlotSet

from connectors.handoff_contract import contract, handoff_id_for_message
from connectors.unanswered_turns import PRIORITY, REASON, UnansweredTurn, handoff_events


def test_the_connectors_reason_is_the_contract_one_it_makes():
    assert contract()["reasons"][REASON]["made_by"] == "connector"
    assert PRIORITY in contract()["priorities"]


def test_the_hand_off_events_follow_the_contract_order():
    for active_loop in (None, "order_status_form"):
        events = handoff_events(UnansweredTurn("hello?", [], "hf_x"), "Sorry", active_loop=active_loop)
        # Ending an active form (ActiveLoop + requested_slot) is not part of the hand-off itself.
        steps = []
        for event in events:
            if isinstance(event, BotUttered):
                steps.append("bot")
            elif isinstance(event, ConversationPaused):
                steps.append("pause")
            elif isinstance(event, SlotSet) and event.key != "requested_slot":
                steps.append({"slot": event.key})
        assert steps == contract()["handoff_events"]
        details = next(event.value for event in events if isinstance(event, SlotSet) and event.key == "handoff_details")
        assert set(contract()["handoff_details_keys"]) <= set(details)


def test_the_hand_off_id_of_a_message_is_the_contract_one():
    example = contract()["handoff_id"]["example"]
    assert handoff_id_for_message(example["sender_id"], example["timestamp"], example["text"]) == example["handoff_id"]


# The one import allowed: the runner of in-process actions (issue 16) runs the actions package inside Rasa, and
# shares with it only the documented flag that sends an action reaching outside back to the action server
# (actions/in_process.py, actions/CONTRACT.md "Actions that run inside Rasa").
ALLOWED_IMPORTS = {("in_process_actions.py", "actions.in_process")}


def test_the_connector_meets_the_action_server_through_files_not_imports():
    import ast
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[2] / "connectors").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names = [name for name in names if (path.name, name) not in ALLOWED_IMPORTS]
            assert not any(name.split(".")[0] in ("actions", "components") for name in names), path.name
