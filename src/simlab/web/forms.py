"""Forms of the web UI. The new-run form is generated from the algorithm's JSON Schema
(the engine's pydantic model): labels, units, descriptions, defaults and limits come
from there, so every registered model gets its form with no template of its own. The
form only shapes input; the service validates it (its field errors are put back next to
the fields)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from simlab import engine
from simlab.accounts.models import Role
from simlab.core.actor import SCOPES
from simlab.core.errors import ApplicationError
from simlab.simulations.selectors import RunTarget
from simlab.simulations.services import MAX_SEED
from simlab.usage.models import Kind as UsageKind

PARAMETERS_PREFIX = "parameters."


def add_service_errors(form: forms.BaseForm, exc: ApplicationError) -> None:
    """A service's refusal as form errors: beside the fields it names (a form may map the
    service's paths to its fields with `field_for`), else on the form."""
    details = exc.details if isinstance(exc.details, dict) else {}
    field_for = getattr(form, "field_for", lambda path: _field_of(form, path))
    placed = False
    for path, messages in details.items():
        name = field_for(path)
        if name is not None and name in form.fields:
            form.add_error(name, list(messages) if isinstance(messages, list) else messages)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _field_of(form: forms.BaseForm, path: str) -> str | None:
    """The form field a service's error path names: the path itself, or for an item of a
    list or map ("notify_emails.0") the field holding it."""
    for name in (path, path.split(".", 1)[0]):
        if name in form.fields:
            return name
    return None


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


class TargetSelect(forms.Select):
    """The "Run on" choice: a service that cannot take runs now is shown, not chosen."""

    def __init__(self, unavailable: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unavailable = unavailable

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.unavailable:
            option["attrs"]["disabled"] = True
        return option


def run_on_field(targets: Sequence[RunTarget]) -> forms.Field:
    """Where the runs go: this SimLab (empty) or one of `targets` (the selector's list). An
    unavailable one stays choosable on the server side: the service refuses it, naming
    this field, so a page that went stale says why."""
    choices: list[tuple[str, str]] = [("", "This SimLab")]
    for target in targets:
        label = f"{target.name} ({target.kind})"
        choices.append((str(target.id), f"{label}: unavailable, {target.unavailable}"
                        if target.unavailable else label))  # fmt: skip
    unavailable = {str(target.id) for target in targets if target.unavailable}
    return forms.TypedChoiceField(
        choices=choices,
        coerce=int,
        empty_value=None,
        required=False,
        label="Run on",
        help_text="This SimLab, or a registered service that runs simulations.",
        widget=TargetSelect(unavailable),
    )


class NewRunForm(forms.Form):
    """The seed and the parameters of one algorithm (`parameters.<name>` fields), and
    where it runs (`service_id`, when services are offered)."""

    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text="Leave empty for a random seed; the same seed gives the same result.",
    )

    def __init__(
        self,
        algorithm: str,
        *args: Any,
        targets: Sequence[RunTarget] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service_id"] = run_on_field(targets)
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

    def field_for(self, path: str) -> str | None:
        """The service names `expires_at`; the form asks for a day."""
        name = "expires_on" if path == "expires_at" else path
        return name if name in self.fields else None


class InviteForm(forms.Form):
    who = forms.CharField(
        max_length=254, label="Username or e-mail", help_text="Someone with a SimLab login."
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class InvitationForm(forms.Form):
    """An invitation by e-mail, for someone without a SimLab login yet."""

    email = forms.EmailField(max_length=254, label="E-mail address to invite")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER, label="Invited role")

    prefix = "invitation"  # its own field ids beside the add-a-member form's


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class AnnotateForm(forms.Form):
    """A run's tags and note (the service decides what a tag may be)."""

    tags = forms.CharField(required=False, max_length=1000, label="Tags (separated by commas)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def tag_list(self) -> list[str]:
        return [tag for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


AXES = 3  # axes offered by the sweep form (a grid of up to three parameters)


def parse_axis_values(text: str, schema: dict[str, Any]) -> list[Any]:
    """ "1000, 2000, 4000" as the parameter's type wants it (numbers, or the text of an
    enum's choices); anything not a number stays text, for the service to name."""
    values: list[Any] = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        if schema.get("type") in ("integer", "number"):
            try:
                number = float(part)
            except ValueError:
                values.append(part)
                continue
            is_whole = schema.get("type") == "integer" and number.is_integer()
            values.append(int(number) if is_whole else number)
        else:
            values.append(part)
    return values


class NewSweepForm(NewRunForm):
    """A new run's fields (the base parameters), plus the varied axes and seeds."""

    name = forms.CharField(max_length=200, required=False)
    seeds_per_point = forms.IntegerField(
        min_value=1, max_value=1000, initial=1, label="Seeds per point"
    )

    def __init__(self, algorithm: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(algorithm, *args, **kwargs)
        self.schema = self.algorithm.params_model.model_json_schema().get("properties", {})
        choices = [("", "—")] + [(n, p.get("title", n)) for n, p in self.schema.items()]
        for index in range(AXES):
            self.fields[f"axis_{index}_parameter"] = forms.ChoiceField(
                choices=choices, required=index == 0, label=f"Parameter {index + 1}"
            )
            self.fields[f"axis_{index}_values"] = forms.CharField(
                required=index == 0,
                label=f"Values {index + 1}",
                help_text="Separated by commas, e.g. 1000, 2000, 4000",
            )
        for name in self.fields:
            if name.startswith(PARAMETERS_PREFIX):
                self.fields[name].required = False

    def axes(self) -> list[dict[str, Any]]:
        axes = []
        for index in range(AXES):
            name = self.cleaned_data.get(f"axis_{index}_parameter")
            text = self.cleaned_data.get(f"axis_{index}_values") or ""
            if name:
                values = parse_axis_values(text, self.schema.get(name, {}))
                axes.append({"parameter": name, "values": values})
        return axes

    def base_parameters(self) -> dict[str, Any]:
        """The parameters not varied (a varied one's own field is left out)."""
        varied = {axis["parameter"] for axis in self.axes()}
        return {k: v for k, v in self.parameters().items() if k not in varied}

    def field_for(self, path: str) -> str | None:
        """The form field a service error path names (axes.0.values.2 -> axis_0_values)."""
        parts = path.split(".")
        if parts[0] == "axes" and len(parts) >= 3 and parts[1].isdigit():
            return f"axis_{parts[1]}_{'parameter' if parts[2] == 'parameter' else 'values'}"
        if parts[0] == "base_parameters" and len(parts) > 1:
            return PARAMETERS_PREFIX + parts[1]
        return path if path in self.fields else None


class _MetricForm(forms.Form):
    """A form about one of a sweep's metrics (`target`, chosen among `metrics`)."""

    target_label = "Metric"

    def __init__(self, metrics: Sequence[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"] = forms.ChoiceField(
            choices=[(m, m) for m in metrics], label=self.target_label
        )
        self.order_fields(self.field_order)


class TrainSurrogateForm(_MetricForm):
    """A surrogate of one of a sweep's metrics over its varied parameters."""

    target_label = "Metric to predict"
    field_order = ["name", "target", "level"]

    name = forms.CharField(max_length=200, label="Model name")
    level = forms.FloatField(min_value=0.5, max_value=0.99, initial=0.9, label="Interval coverage")


class AdaptiveStudyForm(_MetricForm):
    """An adaptive study over a sweep's grid: a metric, the accuracy, the run budget."""

    prefix = "adaptive"  # beside the training form on the sweep's page
    target_label = "Metric to learn"
    field_order = ["target", "accuracy", "budget"]

    accuracy = forms.FloatField(
        label="Target accuracy (CV RMSE)", help_text="Stop once the model's error is at most this."
    )
    budget = forms.IntegerField(label="Run budget", initial=30)


class UsageFilterForm(forms.Form):
    """The usage page's range and kind (empty: the service's defaults)."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    kind = forms.ChoiceField(required=False, choices=[("", "all kinds"), *UsageKind.choices])
