"""Behaviour-preserving speed-ups for Rasa 3.6 internals: an explicit start-up step of the Rasa server.

Installed by the Rasa start-up step `python -m connectors.rasa_start run …` (Procfile), in the Rasa
server process before Rasa starts, so they serve every channel. RASA_SPEEDUPS=0 turns them off (Rasa
then runs exactly as shipped); they are also off on any Rasa version other than the one they were
tested on. Measured in README.md.

Action-response validation. Rasa 3.6 checks every action-server response with
`jsonschema.validate(result, RemoteAction.action_response_format_spec())`. That call first
validates the *schema* against the JSON-Schema meta-schema and builds a new validator, every
time: about 20 ms of CPU per custom action on our 2-core machine, roughly as much as the whole
NLU parse (bench/README_whatsapp.md, "Where the time goes"). The replacement builds its validators
once, and checks each event against the schema of its own event name rather than against all 23
(`EventDiscriminatingValidator`). An invalid response raises
the same `ValidationError` as before (jsonschema's `best_match` on Rasa's own schema, with Rasa's
explanation appended), so valid and invalid responses are treated exactly as before.

Event streaming from the SQL tracker store. Before saving a turn, Rasa 3.6's `TrackerStore.stream_events`
works out which events are new by loading the stored tracker again — every event row of the session, parsed from
JSON, deserialised and replayed into a `DialogueStateTracker` — only to take the length of its event list. For
`SQLTrackerStore` that length is the number of rows its own session query returns (Rasa's `_additional_events`
counts the same query when it stores the turn right after). The speed-up counts those rows instead of loading
them: the same events are published, in the same order, before the same insert. (Rasa's retrieve returns no
tracker when the store has no domain; then the shipped path runs.)

Model predictions (TED, and DIET or ResponseSelector where configured). Rasa 3.6 wraps each
model's predict step in a `tf.function` with a shape-free input signature, and calls that function
on every prediction. Each call first matches its inputs against the signature to pick the one
traced graph, which costs about half as much as running the graph: about 0.8 ms of CPU per call, two
TED calls per customer message. Once the graph exists, the speed-up calls it directly (the
signature's concrete function: the same graph, the same inputs and outputs), skipping the matching.

Model loading (TED, and DIET or ResponseSelector where configured). To create a saved model's variables
before reading its weights, Rasa 3.6's `RasaModel.load` compiles the model and runs `fit` on one example: Keras
traces the whole training step (loss, gradients, optimizer) into a graph, about 15-20 s of CPU on 2 cores for
TED, most of a Rasa start. The speed-up runs the same example through the model's loss once, eagerly, which
creates the same layer variables (no graph, no gradients: about 0.2 s), then reads the weights and checks that
every variable the model has was found in the saved file; the prediction graph is traced as before. The
optimizer's saved state is not read: it only matters for further training, and fine-tuning
(`finetune_mode`) keeps Rasa's own path. The same saved model gives the same predictions
(tests/integration/test_model_speedups.py).

Kept-alive connections to the action server. Rasa 3.6's `EndpointConfig.request` opens a new
`aiohttp.ClientSession`, and so a new TCP connection, for every call: a custom action costs a connect, an
accept on the action server and a close on both sides. The speed-up gives each endpoint one session per event
loop whose connections are kept alive for KEEPALIVE_SECONDS, shorter than the action server's own keep-alive
(Sanic's 5 s), so a connection is never reused just as the server closes it. Requests, headers, auth,
timeouts and errors are Rasa's own (the same `request` code runs on the pooled session); the sessions close when
the Rasa server stops. RASA_ACTION_KEEPALIVE_SECONDS sets the keep-alive (lower it below the keep-alive of
anything between Rasa and the action server); 0 turns this one speed-up off.

Policies that cannot win (TED). For every next-action prediction Rasa 3.6 runs every policy and then lets
its ensemble pick: a "no user" prediction beats all others, then the highest confidence, then the higher
priority. When RulePolicy (priority 6) or MemoizationPolicy (3) is sure of an action (confidence 1.0), TED
(priority 1, confidences at most 1.0, never "no user", never end-to-end when trained without text) cannot win,
yet Rasa runs its featurisation and network: about 3 ms of CPU of the 4.3 ms a prediction costs here, two
predictions per customer message. The speed-up runs the other policies first, and when one of them has
decided gives the ensemble a zero stand-in for TED instead of running it; otherwise TED runs as before. The
ensemble, its events and the prediction are Rasa's own (tests/integration/test_outranked_policies.py compares
every step of the test and training stories with and without it).

The prediction graph without dask (connectors/sequential_graph_runner.py). Rasa 3.6 runs every parse and every
prediction through dask's scheduler, rebuilding the task graph each time: about 7 % of a Rasa instance's event loop
under load. The graph's nodes are called in a cached order instead, with the same arguments; parses and predictions
are identical (tests/integration/test_sequential_graph_runner.py).

Next-action prediction's own work (connectors/fast_policies.py): within one prediction, the tracker's prior states are
computed once for all policies instead of once per policy call, and RulePolicy looks its rules up by the previous
action and intent they require instead of testing all of them; the predictions are Rasa's own
(tests/integration/test_fast_policies.py).

The NLU parse's count features (connectors/fast_count_vectors.py): CountVectorsFeaturizer counts one message's
tokens with the vectorizer's own analyzer and vocabulary and makes its sequence and sentence COO matrices directly,
instead of two scikit-learn transforms that each build a CSR matrix and convert it; the matrices are scipy's to the
last attribute (tests/integration/test_nlu_speedups.py, tests/connector/test_fast_count_vectors.py).

The empty-domain check per message. Before it checks a parse's intent and entities against the domain, Rasa 3.6's
`MessageProcessor._check_for_unseen_features` asks `Domain.is_empty()`, which builds a new empty `Domain` from an empty
dict and renders both domains as dicts, for every customer message (about 1.4 % of a Rasa instance's event loop under
load). The speed-up renders the empty domain once per process and compares with that: the same comparison of the same
dicts.

Event classes by type name. Deserialising an event (`Event.from_parameters`, for every event of an action server's
answer and of a tracker read back) looks its class up with `Event.resolve_by_type`, which walks the whole tree of
`Event` subclasses each time (about 1.4 % of the event loop). The speed-up keeps the result of that walk per type name
and forgets it whenever a new `Event` subclass is defined (`Event.__init_subclass__`), so it always answers what the
walk would answer.

"""
from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import weakref
from typing import Any, Dict, Optional, Text

from connectors import fast_count_vectors, fast_policies, sequential_graph_runner

logger = logging.getLogger(__name__)

# The speed-ups replace Rasa internals, so they run only on the exact version their tests passed on
# (requirements.lock pins it). Upgrading Rasa: run tests/connector/test_rasa_speedups.py,
# tests/integration/test_model_speedups.py and tests/connector/test_pika_broker.py (connectors/pika_broker.py
# is gated on this version too) on the new version, then change this.
TESTED_RASA_VERSION = "3.6.21"
SWITCH_ENV = "RASA_SPEEDUPS"
_INSTALLED_FLAG = "_kesar_lane_speedup_installed"


def off_reason(switch_env: str, environ: Optional[Dict[str, str]] = None,
               rasa_version: Optional[str] = None) -> Optional[str]:
    """Why a change to Rasa's internals must stay off: its switch is 0, or this is not the Rasa it was tested on.
    None: it may run. (connectors/pika_broker.py asks the same with its own switch.)"""
    import rasa

    environ = os.environ if environ is None else environ
    rasa_version = rasa_version or rasa.__version__
    if environ.get(switch_env, "1").strip() == "0":
        return f"{switch_env}=0"
    if rasa_version != TESTED_RASA_VERSION:
        return f"Rasa {rasa_version} is not the tested {TESTED_RASA_VERSION}"
    return None


def install(environ: Optional[Dict[str, str]] = None, rasa_version: Optional[str] = None) -> str:
    """Installs the speed-ups once per process unless switched off; returns the line that says which."""
    import rasa

    reason = off_reason(SWITCH_ENV, environ, rasa_version)
    if reason is not None:
        return f"Rasa speed-ups: off ({reason})"
    rasa_version = rasa_version or rasa.__version__
    keepalive = keepalive_seconds(environ)  # a bad value stops the start before anything is changed
    install_cached_action_validator()
    install_cached_empty_domain_check()
    install_cached_event_classes()
    install_direct_model_predictions()
    install_counted_sql_event_streaming()
    install_model_loading_without_a_training_step()
    install_kept_alive_endpoint_connections(keepalive)
    install_outranked_policies_skipped()
    fast_policies.install()  # after the TED skip: it wraps the prediction that one replaces
    sequential_graph_runner.install()
    fast_count_vectors.install()
    return f"Rasa speed-ups: on (Rasa {rasa_version}; {SWITCH_ENV}=0 turns them off)"


def install_direct_model_predictions() -> None:
    """After the first prediction, models call their traced predict graph directly."""
    from rasa.utils.tensorflow.models import RasaModel

    if getattr(RasaModel, _INSTALLED_FLAG, False):
        return
    import tensorflow as tf

    rasa_predict = RasaModel._rasa_predict

    def _rasa_predict(self: RasaModel, batch_in: Any) -> Any:
        step = self._tf_predict_step
        # Rasa creates the tf.function on the first call (and traces it then); from the second call
        # on, its one concrete function is called instead. Eager mode (run_eagerly) is untouched.
        if step is not None and not self._run_eagerly and not isinstance(step, tf.types.experimental.ConcreteFunction):
            self._tf_predict_step = step.get_concrete_function()
        return rasa_predict(self, batch_in)

    _rasa_predict.__wrapped__ = rasa_predict  # Rasa's own, for the equality test
    RasaModel._rasa_predict = _rasa_predict
    setattr(RasaModel, _INSTALLED_FLAG, True)
    logger.debug("Rasa model predictions call their traced graph directly")


_LOAD_INSTALLED_FLAG = "_kesar_lane_load_speedup_installed"


def install_model_loading_without_a_training_step() -> None:
    """Saved models get their variables from one eager pass of the loss instead of a traced training step."""
    from rasa.utils.tensorflow.models import RasaModel

    if getattr(RasaModel, _LOAD_INSTALLED_FLAG, False):
        return
    import tensorflow as tf
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
    from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator

    rasa_load = RasaModel.load.__func__

    @functools.wraps(rasa_load)
    def load(cls: Any, model_file_name: Text, model_data_example: Any, predict_data_example: Any = None,
             finetune_mode: bool = False, *args: Any, **kwargs: Any) -> Any:
        if finetune_mode:  # training continues: the optimizer's state matters, Rasa's path reads it
            return rasa_load(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                             *args, **kwargs)
        model = cls(*args, **kwargs)
        config = kwargs.get("config", {})
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
                      run_eagerly=config.get(RUN_EAGERLY))
        batch_in, _ = RasaBatchDataGenerator(model_data_example, batch_size=1)[0]
        model._training = True  # the training branch of every layer, as Rasa's fit step takes it
        model.batch_loss(batch_in)
        model._training = None
        status = model.load_weights(model_file_name)
        status.assert_existing_objects_matched()  # every variable the model has got its saved value
        status.expect_partial()  # the optimizer's saved slots are not needed to predict
        if predict_data_example:
            model.run_inference(predict_data_example)  # traces the prediction graph now, as Rasa does
        return model

    RasaModel.load = classmethod(load)
    setattr(RasaModel, _LOAD_INSTALLED_FLAG, True)
    logger.debug("Rasa models load their weights without tracing a training step")


def install_counted_sql_event_streaming() -> None:
    """SQLTrackerStore streams a turn's new events after counting the stored ones, not loading them."""
    import itertools

    from rasa.core.tracker_store import SQLTrackerStore

    if getattr(SQLTrackerStore, _INSTALLED_FLAG, False):
        return
    shipped = SQLTrackerStore.stream_events

    async def stream_events(self: SQLTrackerStore, tracker: Any) -> None:
        if self.event_broker is None or not self.domain:
            return await shipped(self, tracker)
        with self.session_scope() as session:
            stored = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False).count()
        # Rasa: TrackerEventDiffEngine.event_difference(stored tracker, tracker), i.e. the events past the
        # stored tracker's length, which is this count (0 when nothing is stored: Rasa's retrieve gives None).
        new_events = list(itertools.islice(tracker.events, stored, len(tracker.events)))
        await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    SQLTrackerStore.stream_events = stream_events
    setattr(SQLTrackerStore, _INSTALLED_FLAG, True)
    logger.debug("SQLTrackerStore streams new events after counting the stored ones")


def install_cached_empty_domain_check() -> None:
    """`Domain.is_empty` compares with the empty domain rendered once, not rebuilt per call."""
    from rasa.shared.core.domain import Domain

    if getattr(Domain, _INSTALLED_FLAG, False):
        return
    shipped = Domain.is_empty

    @functools.lru_cache(maxsize=1)
    def empty_as_dict() -> Dict[Text, Any]:  # on first use: Domain.empty() needs Rasa fully imported
        return Domain.empty().as_dict()

    def is_empty(self: Domain) -> bool:
        return self.as_dict() == empty_as_dict()

    is_empty.__wrapped__ = shipped  # type: ignore[attr-defined]
    Domain.is_empty = is_empty  # type: ignore[assignment]
    setattr(Domain, _INSTALLED_FLAG, True)


def install_cached_event_classes() -> None:
    """`Event.resolve_by_type` answers from a per-name cache of Rasa's own lookup, emptied whenever a new `Event`
    subclass is defined (the only thing that changes what the lookup walks)."""
    from rasa.shared.core.events import Event

    if getattr(Event, _INSTALLED_FLAG, False):
        return
    shipped = Event.resolve_by_type  # a staticmethod: the plain function
    found: Dict[Text, Any] = {}
    earlier_hook = Event.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: Any, **kwargs: Any) -> None:
        found.clear()
        if earlier_hook is not None:
            earlier_hook.__func__(cls, **kwargs)
        else:
            super(Event, cls).__init_subclass__(**kwargs)

    def resolve_by_type(type_name: Text, default: Optional[Any] = None) -> Optional[Any]:
        if type_name in found:
            return found[type_name]
        resolved = shipped(type_name, default)  # raises, as before, for an unknown name without a default
        # Only a class Rasa's walk found is kept: a default or None ("topic") says nothing about the name.
        if resolved is not None and resolved is not default and getattr(resolved, "type_name", None) == type_name:
            found[type_name] = resolved
        return resolved

    resolve_by_type.__wrapped__ = shipped  # type: ignore[attr-defined]
    Event.__init_subclass__ = classmethod(__init_subclass__)  # type: ignore[assignment]
    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]
    setattr(Event, _INSTALLED_FLAG, True)


def install_cached_action_validator() -> None:
    """Action-server responses are validated with a validator built once."""
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction, _INSTALLED_FLAG, False):
        return
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of on every response
    validator = validator_class(schema)
    quick = EventDiscriminatingValidator.build(schema, validator_class) or validator

    def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
        if quick.is_valid(result):
            return True
        # Invalid: the error comes from Rasa's own schema, so it reads exactly as Rasa's would.
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (  # Rasa's own wording (rasa/core/actions/action.py)
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result
    setattr(RemoteAction, _INSTALLED_FLAG, True)
    logger.debug("Rasa action-response validation uses a prebuilt jsonschema validator")


class EventDiscriminatingValidator:
    """Says whether a response is valid under Rasa's schema, checking each event only against
    the schema of its own event name.

    Rasa's schema checks each event against all 23 event schemas (`oneOf`), each of which pins
    `event` to its own name (`const`). Since the names differ, an event can only ever match the
    schema of its own name: the `oneOf` holds exactly when the event's name is one of them and the
    event matches that one schema. So: the response is checked against Rasa's schema without the
    `oneOf`, then each event against its own name's schema. Same verdicts, a 23rd of the work.
    `build` returns None (use Rasa's schema as it is) if the schema is not shaped that way.
    """

    def __init__(self, outer: Any, by_event_name: Dict[Text, Any]) -> None:
        self._outer = outer
        self._by_event_name = by_event_name

    @classmethod
    def build(cls, schema: Dict[Text, Any], validator_class: Any) -> Optional["EventDiscriminatingValidator"]:
        try:
            items = schema["properties"]["events"]["items"]
            branches = items["oneOf"]
            names = [branch["properties"]["event"]["const"] for branch in branches]
            event_is_a_required_string = items["properties"]["event"] == {"type": "string"}
        except (KeyError, TypeError):
            return None
        if (len(set(names)) != len(names) or not event_is_a_required_string
                or "event" not in items.get("required", ()) or "$ref" in repr(schema)):
            return None
        outer = copy.deepcopy(schema)
        del outer["properties"]["events"]["items"]["oneOf"]
        return cls(validator_class(outer), {name: validator_class(branch) for name, branch in zip(names, branches)})

    def is_valid(self, result: Any) -> bool:
        if not self._outer.is_valid(result):
            return False
        # Valid so far: a dict whose "events", if present, is a list of objects with a string "event".
        for event in result.get("events", ()):
            validator = self._by_event_name.get(event["event"])
            if validator is None or not validator.is_valid(event):
                return False
        return True


if __name__ == "__main__":  # the entry of a few commits ago; connectors.rasa_start is the one to use
    from connectors.rasa_start import main

    main()


# Below Sanic's KEEP_ALIVE_TIMEOUT (5 s), which rasa-sdk's action server keeps: the client gives a
# connection up before the server would, so a request never races the server's close.
KEEPALIVE_SECONDS = 2.0
KEEPALIVE_ENV = "RASA_ACTION_KEEPALIVE_SECONDS"
_SESSIONS_INSTALLED_FLAG = "_kesar_lane_session_speedup_installed"
_POOLED_SESSIONS: "weakref.WeakSet[Any]" = weakref.WeakSet()


class _KeptSession:
    """What `async with endpoint.session()` enters: the endpoint's pooled session, left open on exit."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_exc: Any) -> None:
        return None


def keepalive_seconds(environ: Optional[Dict[str, str]] = None) -> float:
    """RASA_ACTION_KEEPALIVE_SECONDS (default KEEPALIVE_SECONDS); 0: a new connection per call, as shipped."""
    raw = (os.environ if environ is None else environ).get(KEEPALIVE_ENV, "").strip()
    if not raw:
        return KEEPALIVE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{KEEPALIVE_ENV} must be a number of seconds (0 turns keep-alive off), not {raw!r}") from None
    if not 0 <= seconds <= 300:
        raise ValueError(f"{KEEPALIVE_ENV} must be between 0 and 300 seconds, not {raw!r}")
    return seconds


def install_kept_alive_endpoint_connections(keepalive: float = KEEPALIVE_SECONDS) -> None:
    """Endpoint calls (custom actions) reuse kept-alive connections instead of opening one per call."""
    import aiohttp
    import rasa.core.run
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

    if getattr(EndpointConfig, _SESSIONS_INSTALLED_FLAG, False):
        return
    if keepalive == 0:
        logger.info("%s=0: Rasa opens a new connection for every action call", KEEPALIVE_ENV)
        return
    shipped_close_resources = rasa.core.run.close_resources

    def session(self: EndpointConfig) -> _KeptSession:
        loop = asyncio.get_running_loop()
        pools = self.__dict__.setdefault("_kesar_lane_sessions", weakref.WeakKeyDictionary())
        pooled = pools.get(loop)
        if pooled is None or pooled.closed:
            auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
            pooled = aiohttp.ClientSession(  # Rasa's own session settings, plus the kept-alive connector
                headers=self.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=keepalive),
            )  # fmt: skip
            pools[loop] = pooled
            _POOLED_SESSIONS.add(pooled)
        return _KeptSession(pooled)

    async def close_resources(app: Any, loop: Any) -> None:
        await shipped_close_resources(app, loop)
        await close_pooled_sessions()

    session.__wrapped__ = EndpointConfig.session  # type: ignore[attr-defined]
    close_resources.__wrapped__ = shipped_close_resources  # type: ignore[attr-defined]
    EndpointConfig.session = session
    # Looked up by name when the server starts (rasa.core.run.serve_application), so this is the one registered.
    rasa.core.run.close_resources = close_resources
    setattr(EndpointConfig, _SESSIONS_INSTALLED_FLAG, True)
    logger.debug("Rasa endpoint calls keep their connections alive for %s s", keepalive)


async def close_pooled_sessions() -> None:
    """Closes the pooled sessions of the running event loop (the Rasa server's, when it stops)."""
    loop = asyncio.get_running_loop()
    for pooled in list(_POOLED_SESSIONS):
        if not pooled.closed and pooled._loop is loop:
            await pooled.close()


_OUTRANKED_INSTALLED_FLAG = "_kesar_lane_outranked_policies_installed"


class OutrankedPolicySkipper:
    """Says, for one loaded model, which policies need not run for a prediction because another has already
    decided it (see `install_outranked_policies_skipped`).

    Built once per processor from the model's predict graph. It applies only to the graph Rasa 3.6 builds from a
    `policies:` list: one DefaultPolicyPredictionEnsemble node fed by policy nodes. The skippable policies are the
    plain TEDPolicy nodes that cannot make an end-to-end (text) prediction (trained without text features):
    such a prediction is never "no user" and never end-to-end, so under the ensemble's rules it loses to any
    prediction that is "no user", and to any prediction of confidence 1.0 from a policy of higher priority.
    """

    def __init__(self, target: Text, cheap: list, skippable: Dict[Text, Any]) -> None:
        self.target = target
        self.cheap = cheap  # node names of the policies that always run
        self.skippable = skippable  # node name -> its TEDPolicy component
        self.highest_skippable_priority = max(policy.priority for policy in skippable.values())

    @classmethod
    def for_processor(cls, processor: Any) -> Optional["OutrankedPolicySkipper"]:
        from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
        from rasa.core.policies.policy import Policy
        from rasa.core.policies.ted_policy import TEDPolicy
        from rasa.shared.nlu.constants import TEXT

        target = processor.model_metadata.core_target
        runner = processor.graph_runner
        nodes = getattr(runner, "_instantiated_nodes", None)
        schema = getattr(runner, "_graph_schema", None)
        if not target or nodes is None or schema is None or target not in schema.nodes:
            return None
        if schema.nodes[target].uses is not DefaultPolicyPredictionEnsemble:
            return None
        cheap, skippable = [], {}
        for name in schema.nodes[target].needs.values():
            if name not in schema.nodes or not issubclass(schema.nodes[name].uses, Policy):
                continue
            component = nodes[name]._component
            if (type(component) is TEDPolicy and not component.only_e2e
                    and TEXT not in (getattr(component, "fake_features", None) or {})):
                skippable[name] = component
            else:
                cheap.append(name)
        if not skippable or not cheap:
            return None
        return cls(target, cheap, skippable)

    def outranked(self, predictions: Any, tracker: Any, domain: Any) -> bool:
        """True when one of `predictions` wins over anything a skippable policy could predict."""
        rejected = self._rejected_action_index(tracker, domain)
        for prediction in predictions:
            if prediction.is_no_user_prediction:
                return True  # "no user" predictions overrule all others (TED's never is one)
            probabilities = list(prediction.probabilities)
            if rejected is not None:
                probabilities[rejected] = 0.0  # what the ensemble does before comparing
            if max(probabilities, default=0.0) >= 1.0 and prediction.policy_priority > self.highest_skippable_priority:
                return True  # no confidence is above 1.0, and a tie goes to the higher priority
        return False

    @staticmethod
    def _rejected_action_index(tracker: Any, domain: Any) -> Optional[int]:
        from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected

        last = next((e for e in reversed(tracker.events) if isinstance(e, (ActionExecutionRejected, ActionExecuted))), None)
        if isinstance(last, ActionExecutionRejected):
            return domain.index_for_action(last.action_name)
        return None

    def stand_ins(self, domain: Any) -> Dict[Text, Any]:
        """For each skipped policy, a prediction that cannot win: all zeros, with the policy's name and priority."""
        zeros = [0.0] * len(domain.action_names_or_texts)
        return {name: policy._prediction(list(zeros)) for name, policy in self.skippable.items()}


def install_outranked_policies_skipped() -> None:
    """TED is not run for a prediction that a rule (or memorised story) has already decided."""
    from rasa.core.processor import MessageProcessor
    from rasa.engine.constants import PLACEHOLDER_TRACKER

    if getattr(MessageProcessor, _OUTRANKED_INSTALLED_FLAG, False):
        return
    shipped = MessageProcessor._predict_next_with_tracker

    @functools.wraps(shipped)
    def _predict_next_with_tracker(self: MessageProcessor, tracker: Any) -> Any:
        if "_kesar_lane_skipper" not in self.__dict__:
            self.__dict__["_kesar_lane_skipper"] = OutrankedPolicySkipper.for_processor(self)
        skipper = self.__dict__["_kesar_lane_skipper"]
        if skipper is None or tracker.followup_action:
            return shipped(self, tracker)
        # The cheap policies first; their predictions are then given to the graph as inputs, so they run once.
        first = self.graph_runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=list(skipper.cheap))
        inputs = {PLACEHOLDER_TRACKER: tracker, **first}
        if skipper.outranked(first.values(), tracker, self.domain):
            inputs.update(skipper.stand_ins(self.domain))
        return self.graph_runner.run(inputs=inputs, targets=[skipper.target])[skipper.target]

    MessageProcessor._predict_next_with_tracker = _predict_next_with_tracker
    setattr(MessageProcessor, _OUTRANKED_INSTALLED_FLAG, True)
    logger.debug("Rasa skips TED when a rule or a memorised story has decided the next action")
