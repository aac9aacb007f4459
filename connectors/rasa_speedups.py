"""Behaviour-preserving speed-ups for Rasa 3.6 internals, installed when the WhatsApp channel loads.

Action-response validation. Rasa 3.6 checks every action-server response with
`jsonschema.validate(result, RemoteAction.action_response_format_spec())`. That call first
validates the *schema* against the JSON-Schema meta-schema and builds a new validator, every
time: about 20 ms of CPU per custom action on our 2-core machine, roughly as much as the whole
NLU parse (bench/README_whatsapp.md, "Where the time goes"). The replacement validates against
the same schema with a validator built once, and raises the same `ValidationError` (jsonschema's
`best_match`, with Rasa's explanation appended), so valid and invalid responses are treated
exactly as before.

Only installed on the Rasa version it was written against; on any other version Rasa is left
as it is (and a warning says so).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Text

logger = logging.getLogger(__name__)

SUPPORTED_RASA_PREFIX = "3.6."
_INSTALLED_FLAG = "_kesar_lane_cached_validator"


def install() -> bool:
    """Installs the speed-ups once per process; returns whether they are active."""
    import rasa
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction, _INSTALLED_FLAG, False):
        return True
    if not rasa.__version__.startswith(SUPPORTED_RASA_PREFIX):
        logger.warning(
            "Rasa %s: action-response validation left as Rasa does it (speed-up written for %sx)",
            rasa.__version__, SUPPORTED_RASA_PREFIX,
        )
        return False

    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of on every response
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
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
    return True
