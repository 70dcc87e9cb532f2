from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "simlab.accounts"
    label = "accounts"
    verbose_name = "Accounts"
