"""JWT minting (Django only holds the private key), with the claims compute needs."""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.tokens import RefreshToken


class SimLabTokenObtainPairSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user: Any) -> RefreshToken:
        token = super().get_token(user)
        # Copied into every access token minted from this refresh token, so compute
        # can name the actor without a database round trip.
        token["username"] = user.get_username()
        token["is_superuser"] = bool(user.is_superuser)
        return token  # type: ignore[return-value]


def access_token_for(user: Any) -> str:
    """A fresh access token for `user` (a signed-in page's live sockets)."""
    return str(SimLabTokenObtainPairSerializer.get_token(user).access_token)
