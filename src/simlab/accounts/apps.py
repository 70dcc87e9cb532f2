from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "simlab.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from simlab.accounts import (  # noqa: F401 - registers OpenAPI auth schemes, receivers
            schema,
            signals,
        )
