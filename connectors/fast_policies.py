"""Next-action prediction with less CPU and the same predictions (Rasa 3.6), installed by connectors/rasa_speedups.py.

Every change here is active only inside one next-action prediction (`MessageProcessor._predict_next_with_tracker`,
which the server, `rasa test core` and the story tests go through); training and anything else runs Rasa's own code.

States computed once per prediction. Each policy turns the tracker into its list of dialogue states itself: RulePolicy
twice (once with the last user text, once with its intent), MemoizationPolicy once, TED once when it runs. Each time
Rasa replays every event into a fresh copy of the tracker (`generate_all_prior_trackers`, with a copy of every slot)
and builds the state of every prior tracker (`Domain.get_active_state`); only the treatment of the rule-only turns
and features differs between the policies. Within one prediction, the replay and the states of the prior trackers are
now made once per tracker (keyed on the tracker object and its number of events) and every call of
`Domain.states_for_tracker_history` runs Rasa's own loop over them, on fresh copies of the states (the callers
change the lists they get: they delete the text or the intent of the last user turn), with the same sharing of
sub-states between the states of one list as Rasa's.

tests/connector/test_fast_policies.py and tests/integration/test_fast_policies.py compare every state list and
every prediction of the story and rule steps with Rasa's own.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from typing import Any, Dict, Iterator, List, Optional, Text, Tuple

logger = logging.getLogger(__name__)

_INSTALLED_FLAG = "_kesar_lane_fast_policies_installed"

# The cache of the prediction under way (None: no prediction, Rasa's own code runs).
_PREDICTION: "contextvars.ContextVar[Optional[_PredictionCache]]" = contextvars.ContextVar(
    "kesar_lane_prediction", default=None)


class _PredictionCache:
    """What one prediction has computed about its tracker: the prior trackers' states, per (tracker, events)."""

    __slots__ = ("priors",)

    def __init__(self) -> None:
        self.priors: Dict[Tuple[int, int, bool, int], Tuple[Any, Any, List[tuple]]] = {}

    def prior_states(self, domain: Any, tracker: Any, omit_unset_slots: bool) -> List[tuple]:
        key = (id(tracker), len(tracker.events), bool(omit_unset_slots), id(domain))
        entry = self.priors.get(key)
        if entry is not None and entry[0] is tracker and entry[1] is domain:
            return entry[2]
        records = _prior_state_records(domain, tracker, omit_unset_slots)
        self.priors[key] = (tracker, domain, records)  # holds the tracker: its id cannot be reused meanwhile
        return records


@contextlib.contextmanager
def one_prediction() -> Iterator[None]:
    """The scope of one next-action prediction: what it computes is kept until it ends (nested: the outer one)."""
    if _PREDICTION.get() is not None:
        yield
        return
    token = _PREDICTION.set(_PredictionCache())
    try:
        yield
    finally:
        _PREDICTION.reset(token)


def _prior_state_records(domain: Any, tracker: Any, omit_unset_slots: bool) -> List[tuple]:
    """For every prior tracker (Rasa's `generate_all_prior_trackers`): what Rasa's `states_for_tracker_history`
    reads of it, taken before the replay moves on."""
    records = []
    for tr, hide_rule_turn in tracker.generate_all_prior_trackers():
        records.append((
            hide_rule_turn,
            tr.followup_action,
            tr.latest_action_name == tr.active_loop_name,
            domain._get_prev_action_sub_state(tr),
            domain.get_active_state(tr, omit_unset_slots=omit_unset_slots),
        ))
    return records


def _fresh(sub_state: Any, copies: Dict[int, Any]) -> Any:
    """A new dict equal to `sub_state` (its values are strings, numbers or tuples), the same one for the same
    original within one list of states, as Rasa's own states share objects."""
    if not isinstance(sub_state, dict):
        return sub_state
    copied = copies.get(id(sub_state))
    if copied is None:
        copied = copies[id(sub_state)] = dict(sub_state)
    return copied


def _states_from_records(domain: Any, records: List[tuple], ignore_rule_only_turns: bool,
                         rule_only_data: Optional[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
    """Rasa 3.6's `Domain.states_for_tracker_history` loop, over the recorded prior trackers."""
    import rasa.shared.core.constants

    copies: Dict[int, Any] = {}
    states: List[Dict[Text, Any]] = []
    last_ml_action_sub_state = None
    turn_was_hidden = False
    for hide_rule_turn, followup_action, latest_is_active_loop, prev_action_sub_state, active_state in records:
        if ignore_rule_only_turns:
            if not turn_was_hidden:
                last_ml_action_sub_state = _fresh(prev_action_sub_state, copies)
            if not followup_action and not latest_is_active_loop:
                turn_was_hidden = hide_rule_turn
            if turn_was_hidden:
                continue

        # `get_active_state` builds new dicts for every call; its previous action is the tracker's own dict.
        state = {state_type: _fresh(sub_state, copies) for state_type, sub_state in active_state.items()}

        if ignore_rule_only_turns:
            domain._remove_rule_only_features(state, rule_only_data)
            if states:
                domain._substitute_rule_only_user_input(state, states[-1])
            if last_ml_action_sub_state:
                state[rasa.shared.core.constants.PREVIOUS_ACTION] = last_ml_action_sub_state

        states.append(domain._clean_state(state))
    return states


def install() -> None:
    """Installs the change (once per process); it acts only inside a next-action prediction."""
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.domain import Domain

    if getattr(MessageProcessor, _INSTALLED_FLAG, False):
        return

    shipped_states = Domain.states_for_tracker_history

    @functools.wraps(shipped_states)
    def states_for_tracker_history(self: Domain, tracker: Any, omit_unset_slots: bool = False,
                                   ignore_rule_only_turns: bool = False,
                                   rule_only_data: Optional[Dict[Text, Any]] = None) -> List[Dict[Text, Any]]:
        cache = _PREDICTION.get()
        if cache is None or type(self) is not Domain:
            return shipped_states(self, tracker, omit_unset_slots=omit_unset_slots,
                                  ignore_rule_only_turns=ignore_rule_only_turns, rule_only_data=rule_only_data)
        records = cache.prior_states(self, tracker, omit_unset_slots)
        return _states_from_records(self, records, ignore_rule_only_turns, rule_only_data)

    shipped_predict = MessageProcessor._predict_next_with_tracker

    @functools.wraps(shipped_predict)
    def _predict_next_with_tracker(self: MessageProcessor, tracker: Any) -> Any:
        with one_prediction():
            return shipped_predict(self, tracker)

    # `__wrapped__` names Rasa's own prediction (as the speed-up this wraps does), for the equality tests.
    _predict_next_with_tracker.__wrapped__ = getattr(shipped_predict, "__wrapped__", shipped_predict)
    _predict_next_with_tracker._kesar_lane_inner = shipped_predict
    Domain.states_for_tracker_history = states_for_tracker_history
    MessageProcessor._predict_next_with_tracker = _predict_next_with_tracker
    setattr(MessageProcessor, _INSTALLED_FLAG, True)
    logger.debug("Next-action predictions compute the tracker's states once")
