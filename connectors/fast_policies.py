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

RulePolicy's rule lookup by the current state. Rasa's `_get_possible_keys` tests every one of the rules (113 here)
against the last state, then the survivors against the state before it, and so on through every state of the
conversation, parsing and reversing the rule each time. Here the rules are parsed once per loaded lookup and indexed
by the previous action and the user intent their last state requires; only the rules that fit the current previous
action and intent (or require none) are tested against the last state, with Rasa's own conditions, and the survivors
against the earlier states until every survivor is shorter than the history looked at. The set of keys is Rasa's; when
the longest of them is not unique (Rasa then takes the first in the set's order, `max(..., key=len)`), Rasa's own
function builds the set, so that the choice is Rasa's too.

tests/connector/test_fast_policies.py and tests/integration/test_fast_policies.py compare every state list and
every prediction of the story and rule steps with Rasa's own.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from typing import Any, Dict, Iterator, List, Optional, Set, Text, Tuple

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


class RuleIndex:
    """A RulePolicy lookup (rule key -> action), parsed once and indexed by the previous action and the user intent
    that each rule's last state requires. `possible_keys` gives the keys of Rasa's `_get_possible_keys`."""

    _ANY = object()

    def __init__(self, lookup: Dict[Text, Text]) -> None:
        import json

        from rasa.shared.core.constants import PREVIOUS_ACTION, USER
        from rasa.shared.nlu.constants import ACTION_NAME, INTENT

        self.lookup = lookup
        self.size = len(lookup)
        self.starters: List[tuple] = []  # the last state has no previous action (a conversation start)
        # The last state has a previous action: by the previous action name and the user intent it requires
        # (_ANY: it requires none).
        self.by_requirement: Dict[Tuple[Any, Any], List[tuple]] = {}
        for key in lookup:
            reversed_states = [self._compile(state) for state in reversed(json.loads(key))]
            rule = (key, reversed_states)
            has_previous_action, checks = reversed_states[0]
            if not has_previous_action:
                self.starters.append(rule)
                continue
            requirement = (self._required_value(checks, PREVIOUS_ACTION, ACTION_NAME),
                           self._required_value(checks, USER, INTENT))
            self.by_requirement.setdefault(requirement, []).append(rule)

    @staticmethod
    def _compile(rule_state: Dict[Text, Any]) -> tuple:
        """(whether the rule state has a previous action, its checks as Rasa's `_does_rule_match_state` makes them)."""
        from rasa.shared.core.constants import PREVIOUS_ACTION

        checks = []
        for state_type, rule_sub_state in rule_state.items():
            for key, value in rule_sub_state.items():
                if isinstance(value, list):  # json gives lists for tuples; Rasa compares tuples
                    value = tuple(value)
                checks.append((state_type, key, value))
        return bool(rule_state.get(PREVIOUS_ACTION)), tuple(checks)

    @classmethod
    def _required_value(cls, checks: tuple, state_type: Text, key: Text) -> Any:
        """The value the conversation must have at state_type/key for the checks to hold, or _ANY."""
        from rasa.shared.core.constants import SHOULD_NOT_BE_SET

        for check_type, check_key, value in checks:
            if check_type == state_type and check_key == key and value and value != SHOULD_NOT_BE_SET:
                try:
                    hash(value)
                except TypeError:
                    return cls._ANY
                return value
        return cls._ANY

    @staticmethod
    def _matches(checks: tuple, conversation_state: Dict[Text, Any]) -> bool:
        """Rasa 3.6's `RulePolicy._does_rule_match_state`."""
        from rasa.shared.core.constants import SHOULD_NOT_BE_SET

        for state_type, key, value_from_rules in checks:
            value_from_conversation = conversation_state.get(state_type, {}).get(key)
            if (
                value_from_rules
                and value_from_rules != SHOULD_NOT_BE_SET
                and value_from_conversation != value_from_rules
            ) or (
                value_from_rules == SHOULD_NOT_BE_SET
                and value_from_conversation
                and value_from_conversation != SHOULD_NOT_BE_SET
            ):
                return False
        return True

    def _applicable(self, rule: tuple, turn_index: int, conversation_state: Dict[Text, Any],
                    current_previous_action: Any) -> bool:
        """Rasa 3.6's `RulePolicy._is_rule_applicable`."""
        reversed_states = rule[1]
        if turn_index >= len(reversed_states):
            return True
        rule_has_previous_action, checks = reversed_states[turn_index]
        if not rule_has_previous_action and not current_previous_action:
            return True
        if not rule_has_previous_action or not current_previous_action:
            return False
        return self._matches(checks, conversation_state)

    def possible_keys(self, states: List[Dict[Text, Any]]) -> List[Text]:
        from rasa.shared.core.constants import PREVIOUS_ACTION, USER
        from rasa.shared.nlu.constants import ACTION_NAME, INTENT

        last = states[-1]
        current_previous_action = last.get(PREVIOUS_ACTION)
        if not current_previous_action:
            # Rules whose last state is a conversation start apply; no other rule does.
            survivors = list(self.starters)
        else:
            name = current_previous_action.get(ACTION_NAME)
            intent = last.get(USER, {}).get(INTENT)
            candidates = []
            # Four different keys (_ANY equals only itself): each rule is a candidate at most once.
            for requirement in ((name, intent), (name, self._ANY), (self._ANY, intent), (self._ANY, self._ANY)):
                try:
                    candidates.extend(self.by_requirement.get(requirement, ()))
                except TypeError:  # an unhashable value: no rule requires it
                    pass
            survivors = [rule for rule in candidates if self._applicable(rule, 0, last, current_previous_action)]
        turn_index = 1
        while survivors and turn_index < len(states):
            if all(len(rule[1]) <= turn_index for rule in survivors):
                break  # every survivor is applicable at every earlier state
            state = states[-1 - turn_index]
            current_previous_action = state.get(PREVIOUS_ACTION)
            survivors = [rule for rule in survivors
                         if self._applicable(rule, turn_index, state, current_previous_action)]
            turn_index += 1
        return [rule[0] for rule in survivors]


def _rule_index(policy: Any, lookup: Dict[Text, Text]) -> RuleIndex:
    indexes = policy.__dict__.setdefault("_kesar_lane_rule_indexes", {})
    index = indexes.get(id(lookup))
    if index is None or index.lookup is not lookup or index.size != len(lookup):
        index = indexes[id(lookup)] = RuleIndex(lookup)
    return index


def install() -> None:
    """Installs both changes (once per process); they act only inside a next-action prediction."""
    from rasa.core.policies.rule_policy import RulePolicy
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

    shipped_possible_keys = RulePolicy._get_possible_keys

    @functools.wraps(shipped_possible_keys)
    def _get_possible_keys(self: RulePolicy, lookup: Dict[Text, Text], states: List[Dict[Text, Any]]) -> Set[Text]:
        if _PREDICTION.get() is None or not states or type(self) is not RulePolicy:
            return shipped_possible_keys(self, lookup, states)
        keys = _rule_index(self, lookup).possible_keys(states)
        if len(keys) > 1:
            longest = max(len(key) for key in keys)
            if sum(len(key) == longest for key in keys) > 1:
                # Rasa picks the first longest key in its set's order: let Rasa build the set.
                return shipped_possible_keys(self, lookup, states)
        return set(keys)

    shipped_predict = MessageProcessor._predict_next_with_tracker

    @functools.wraps(shipped_predict)
    def _predict_next_with_tracker(self: MessageProcessor, tracker: Any) -> Any:
        with one_prediction():
            return shipped_predict(self, tracker)

    # `__wrapped__` names Rasa's own prediction (as the speed-up this wraps does), for the equality tests.
    _predict_next_with_tracker.__wrapped__ = getattr(shipped_predict, "__wrapped__", shipped_predict)
    _predict_next_with_tracker._kesar_lane_inner = shipped_predict
    Domain.states_for_tracker_history = states_for_tracker_history
    RulePolicy._get_possible_keys = _get_possible_keys
    MessageProcessor._predict_next_with_tracker = _predict_next_with_tracker
    setattr(MessageProcessor, _INSTALLED_FLAG, True)
    logger.debug("Next-action predictions compute the tracker's states once and look rules up by index")
