"""The Rasa server's explicit start-up steps, then Rasa's own command line in the same process.

    .venv/bin/python -m connectors.rasa_start run --enable-api …   # Rasa's own arguments follow
    .venv/bin/python -m connectors.rasa_start train …              # scripts/train.sh: steps 1 and 2 only
    .venv/bin/python -m connectors.rasa_start test core …          # scripts/test.sh: the stories, served as in `run`

1. Known third-party warnings are silenced (KNOWN_WARNINGS): deprecation notices that libraries Rasa
   3.6 pins print at every start-up, with the source lines they quote. None is ours to fix, and they
   buried the lines that matter. RASA_QUIET_WARNINGS=0 shows them again; any other warning still shows.
2. SQL errors hide their statement parameters (hide_sql_parameters): when PostgreSQL goes away
   mid-statement, SQLAlchemy's error text, which Rasa's SQL tracker store and SQL event broker log,
   would otherwise carry the parameters (sender ids, customers' phone numbers, their messages).
3. The speed-ups of connectors/rasa_speedups.py are installed (RASA_SPEEDUPS=0: Rasa as shipped), and
   one line says whether they are on.

deploy/rasa_run.py (the production and cluster profiles) runs the same steps (`start_up_steps`).
"""
from __future__ import annotations

import functools
import os
import sys
import warnings
from typing import List, Tuple, Type

# (category, module the warning is attributed to: a regex matched from the start of its name).
# PyparsingDeprecationWarning (matplotlib, packaging) is a DeprecationWarning too.
KNOWN_WARNINGS: List[Tuple[Type[Warning], str]] = [
    (DeprecationWarning, r"pkg_resources\b"),             # declare_namespace('mpl_toolkits'), ('ruamel')
    (DeprecationWarning, r"rasa\.shared\.utils\.validation$"),  # "pkg_resources is deprecated as an API"
    (DeprecationWarning, r"sanic_cors\b"),                # distutils LooseVersion
    (DeprecationWarning, r"tensorflow\b"),                # jax.xla_computation
    (DeprecationWarning, r"(matplotlib|packaging)\b"),    # pyparsing camelCase names
    (DeprecationWarning, r"(typer|spacy\.cli)\b"),        # click 9 deprecations
    (DeprecationWarning, r"rasa\.core\.tracker_store$"),  # SQLAlchemy's "Calling URL() directly is deprecated"
]
QUIET_ENV = "RASA_QUIET_WARNINGS"


def quiet_known_warnings(environ=None) -> int:
    """Installs the filters unless switched off; returns how many."""
    environ = os.environ if environ is None else environ
    if environ.get(QUIET_ENV, "1").strip() == "0":
        return 0

    def add_ours() -> None:  # in front of the others (an identical filter moves to the front)
        for category, module in KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", category=category, module=module)

    # Both put filters in front of ours when they run: Sanic at import ("once" for every
    # DeprecationWarning), Rasa when its command line starts ("once" for every UserWarning, which
    # pyparsing's deprecations also are). So ours go first, again after Sanic's import, and again
    # after Rasa's step.
    add_ours()
    import rasa.utils.common
    import sanic.app  # noqa: F401

    rasa_filters = rasa.utils.common._filter_warnings

    def rasa_then_ours(*args, **kwargs):
        rasa_filters(*args, **kwargs)
        add_ours()

    if not getattr(rasa_filters, "_ours_follow", False):
        rasa_then_ours._ours_follow = True
        rasa.utils.common._filter_warnings = rasa_then_ours
    add_ours()
    return len(KNOWN_WARNINGS)


def hide_sql_parameters() -> None:
    """Every SQLAlchemy engine created in this process defaults to `hide_parameters=True`: Rasa's SQL
    tracker store and SQL event broker (which calls `sqlalchemy.create_engine` with nothing else) then
    log "[SQL parameters hidden due to hide_parameters=True]" instead of the sender id and the events.
    Only engines created after this step are covered, which is every engine Rasa creates."""
    import sqlalchemy

    create_engine = sqlalchemy.create_engine
    if getattr(create_engine, "_hides_parameters", False):
        return

    @functools.wraps(create_engine)
    def create_engine_hiding_parameters(*args, **kwargs):
        kwargs.setdefault("hide_parameters", True)
        return create_engine(*args, **kwargs)

    create_engine_hiding_parameters._hides_parameters = True
    sqlalchemy.create_engine = create_engine_hiding_parameters


class TrackerStoreNotFound(SystemExit):
    """The endpoints name a tracker store class that cannot be imported: Rasa is not started."""


def refuse_a_missing_tracker_store() -> None:
    """A custom tracker store (`tracker_store: type: some.module.Class`, e.g. the cluster's
    connectors.postgres_tracker_store.PostgresTrackerStore) that cannot be imported stops the start with one
    line naming it. Rasa 3.6 instead warns and serves from an in-memory store, which loses every conversation
    at the next restart and splits conversations between instances; it also swallows an AttributeError
    raised inside the store's constructor the same way. Errors of the store itself now reach Rasa as they are."""
    import rasa.core.tracker_store as tracker_store
    import rasa.shared.utils.common

    if getattr(tracker_store._load_from_module_name_in_endpoint_config, "_refuses_missing", False):
        return

    def load_or_refuse(domain, store, event_broker=None):
        try:
            store_class = rasa.shared.utils.common.class_from_module_path(store.type)
        except (AttributeError, ImportError) as error:
            raise TrackerStoreNotFound(
                f"Rasa not started: the tracker store '{store.type}' in the endpoints file cannot be loaded "
                f"({type(error).__name__}: {error}). Fix `tracker_store: type:` or use a type Rasa ships (e.g. SQL)."
            ) from None
        return store_class(host=store.url, domain=domain, event_broker=event_broker, **store.kwargs)

    load_or_refuse._refuses_missing = True
    tracker_store._load_from_module_name_in_endpoint_config = load_or_refuse


def start_up_steps(serving: bool = True) -> None:
    quiet_known_warnings()
    hide_sql_parameters()
    refuse_a_missing_tracker_store()
    if not serving:  # e.g. `train` (scripts/train.sh): the speed-ups are for serving, and say nothing there
        return
    from connectors import rasa_speedups

    # Rasa has not set up logging yet, so the one line goes straight to stderr.
    try:
        print(rasa_speedups.install(), file=sys.stderr, flush=True)
    except ValueError as error:  # a setting the speed-ups read (RASA_ACTION_KEEPALIVE_SECONDS)
        raise SystemExit(f"Rasa not started: {error}") from None
    if rasa_speedups.off_reason("RASA_IN_PROCESS_ACTIONS") is None:  # also pinned to the tested Rasa
        from connectors import in_process_actions

        in_process_actions.install()  # does nothing unless the endpoints file names actions


def main() -> None:
    # `test` runs the model as the server does, so the story tests run with the same speed-ups.
    start_up_steps(serving=sys.argv[1:2] in (["run"], ["test"]))
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
