"""Factories for the rows a person's data is made of: simulations with result files,
conversations with messages."""

from __future__ import annotations

from typing import Any

import factory
from django.core.files.base import ContentFile

from simlab.analytics.models import ModelVersion, SurrogateModel
from simlab.assistant.models import Conversation, Message
from simlab.simulations.models import Simulation, Status


class SimulationFactory(factory.django.DjangoModelFactory):
    """A finished simulation; `result` (bytes) is stored as its result.npz."""

    class Meta:
        model = Simulation
        skip_postgeneration_save = True

    algorithm = "heat_2d"
    parameters = factory.Dict({"nx": 8})
    seed = factory.Sequence(int)
    status = Status.SUCCEEDED

    @factory.post_generation
    def result(self, create: bool, extracted: bytes | None, **kwargs: Any) -> None:
        if create and extracted is not None:
            self.result_npz.save("result.npz", ContentFile(extracted), save=True)


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Conversation {n}")

    @factory.post_generation
    def says(self, create: bool, extracted: str | None, **kwargs: Any) -> None:
        if create and extracted:
            Message.objects.create(conversation=self, seq=1, role="user", content=extracted)


class SurrogateModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SurrogateModel

    name = factory.Sequence(lambda n: f"surrogate {n}")
    target = "energy"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A version of a new surrogate model of `project`; `artifact` (bytes) is stored."""

    class Meta:
        model = ModelVersion
        skip_postgeneration_save = True

    model = factory.SubFactory(SurrogateModelFactory, project=factory.SelfAttribute("..project"))
    number = 1

    @factory.post_generation
    def artifact(self, create: bool, extracted: bytes | None, **kwargs: Any) -> None:
        if create and extracted is not None:
            self.artifact.save("model.joblib", ContentFile(extracted), save=True)
