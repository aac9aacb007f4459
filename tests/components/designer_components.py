"""Training and loading a designer-list component (components/designer_lists.py) the way Rasa does, for tests."""
from __future__ import annotations

from typing import Sequence, Type

from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

CONTEXT = ExecutionContext(graph_schema=None, model_id="test")


def trained_and_loaded(component_class: Type, tmp_path, intents: Sequence[str], settings: str):
    """`component_class` trained on one example per intent in `intents`, then loaded from the model storage."""
    storage = LocalModelStorage(tmp_path)
    resource = Resource(component_class.__name__)
    config = {"settings_path": settings}
    component = component_class.create(config, storage, resource, CONTEXT)
    component.train(TrainingData([Message(data={"text": f"example {i}", "intent": i}) for i in intents]))
    return component_class.load(config, storage, resource, CONTEXT)
