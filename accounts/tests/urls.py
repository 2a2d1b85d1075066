"""The accounts URLs plus an AI-style endpoint, which takes API keys as well as JWTs."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from nexus.lib.auth import ai_authentication_classes


class WhoAmIView(APIView):
    authentication_classes = ai_authentication_classes()

    def get(self, request: Request) -> Response:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        return Response({"user": request.user.pk, "key": key.pk if key else None})


urlpatterns = [path("test/ai/whoami", WhoAmIView.as_view()), path("", include("accounts.urls"))]
