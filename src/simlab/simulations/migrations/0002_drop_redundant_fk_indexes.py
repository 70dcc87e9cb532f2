"""Drop the single-column indexes Django gives every foreign key of Simulation: each key
leads a composite index already (project_*, sim_sweep_status, sim_user_*), and every
index costs each insert.

The state change is `db_index=False`; the database change is only `DROP INDEX` (a plain
AlterField would rebuild the whole table on SQLite, once per field).
"""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FOREIGN_KEYS = ("created_by", "project", "sweep")


def drop_indexes(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("simulations", "Simulation")
    for name in FOREIGN_KEYS:
        column = model._meta.get_field(name).column
        for index in schema_editor._constraint_names(model, [column], index=True):
            schema_editor.execute(schema_editor._delete_index_sql(model, index))


def create_indexes(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("simulations", "Simulation")
    for name in FOREIGN_KEYS:
        field = model._meta.get_field(name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0001_initial"),
        ("simulations", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name="simulation",
                    name="created_by",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="simulation",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="simulations",
                        to="projects.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="simulation",
                    name="sweep",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="simulations",
                        to="simulations.parametersweep",
                    ),
                ),
            ],
        ),
    ]
