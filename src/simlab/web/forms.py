"""Forms of the web UI. The new-run form is generated from the algorithm's JSON Schema
(the engine's pydantic model): labels, units, descriptions, defaults and limits come
from there, so every registered model gets its form with no template of its own. The
form only shapes input; the service validates it (its field errors are put back next to
the fields)."""

from __future__ import annotations

from typing import Any

from django import forms

from simlab import engine
from simlab.accounts.models import Role
from simlab.core.actor import SCOPES
from simlab.core.errors import ApplicationError
from simlab.simulations.services import MAX_SEED

PARAMETERS_PREFIX = "parameters."


def add_service_errors(form: forms.BaseForm, exc: ApplicationError) -> None:
    """A service's refusal as form errors: beside the fields it names, else on the form."""
    details = exc.details if isinstance(exc.details, dict) else {}
    fields = {name: messages for name, messages in details.items() if name in form.fields}
    for name, messages in fields.items():
        form.add_error(name, list(messages))
    if not fields:
        form.add_error(None, exc.message)


def _label(name: str, schema: dict[str, Any]) -> str:
    title = str(schema.get("title") or name.replace("_", " ").capitalize())
    unit = schema.get("unit")
    return f"{title} ({unit})" if unit else title


def _number_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise forms.ValidationError("A list of numbers, separated by commas.") from None


class NumberListField(forms.CharField):
    """A JSON array of numbers, typed as "2.1, 2.2, 2.3"."""

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        return _number_list(text) if text else None

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        return value


def _field(name: str, schema: dict[str, Any], required: bool) -> forms.Field:
    """One form field for one JSON Schema property."""
    common: dict[str, Any] = {
        "label": _label(name, schema),
        "help_text": schema.get("description", ""),
        "initial": schema.get("default"),
        "required": required and "default" not in schema,
    }
    kind = schema.get("type")
    if "enum" in schema:
        choices = [(value, str(value)) for value in schema["enum"]]
        coerce = int if kind == "integer" else str
        return forms.TypedChoiceField(choices=choices, coerce=coerce, **common)
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        field: forms.Field
        if kind == "integer":
            field = forms.IntegerField(**common)
        else:
            field = forms.FloatField(**common)
            field.widget.attrs["step"] = "any"
        # Hints for the browser; the service holds the rule (and names the field).
        if low is not None:
            field.widget.attrs["min"] = low
        if high is not None:
            field.widget.attrs["max"] = high
        return field
    if kind == "array":
        return NumberListField(**common)
    return forms.CharField(**common)


class NewRunForm(forms.Form):
    """The seed and the parameters of one algorithm (`parameters.<name>` fields)."""

    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text="Leave empty for a random seed; the same seed gives the same result.",
    )

    def __init__(self, algorithm: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.algorithm = engine.get_algorithm(algorithm)
        schema = self.algorithm.params_model.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            self.fields[PARAMETERS_PREFIX + name] = _field(name, prop, name in required)

    def parameters(self) -> dict[str, Any]:
        """The cleaned parameters, left out where empty (the model's default applies)."""
        return {
            name.removeprefix(PARAMETERS_PREFIX): value
            for name, value in self.cleaned_data.items()
            if name.startswith(PARAMETERS_PREFIX) and value not in (None, "")
        }


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. 'laptop scripts'.")
    organization = forms.TypedChoiceField(coerce=int, label="Organisation")
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope}: {text}") for scope, text in SCOPES.items()],
        initial=["read", "write", "compute"],
        widget=forms.CheckboxSelectMultiple,
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for a key that does not expire.",
    )

    def __init__(self, organizations: list[tuple[int, str]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organization"].choices = organizations  # type: ignore[attr-defined]


class InviteForm(forms.Form):
    who = forms.CharField(
        max_length=254, label="Username or e-mail", help_text="Someone with a SimLab login."
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
