"""HTTP endpoints of the accounts app: parse, call a service, render."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import Token

from accounts import selectors, services, tokens
from accounts.models import ApiKey, AuditEvent, Role, User
from accounts.permissions import IsAdmin, RegistrationOpen
from accounts.serializers import (
    AdminUserSerializer,
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    RoleField,
    UserSerializer,
)

# Long enough for any passphrase, short enough that hashing one costs nothing unusual.
PASSWORD_MAX_LENGTH = 4096


def _password_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=PASSWORD_MAX_LENGTH, **kwargs
    )


TokenPairSerializer = inline_serializer(
    "TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()}
)


def _user(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):  # every view using this requires authentication first
        raise NotAuthenticated()
    return user


class PublicView(APIView):
    """No token needed. A stale Authorization header is ignored, and errors that are about
    credentials still answer 401 (with WWW-Authenticate), not DRF's 403 for token-less views."""

    authentication_classes = ()
    permission_classes: tuple[type[BasePermission], ...] = (AllowAny,)

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


# --- /auth ----------------------------------------------------------------------------------


class RegisteredSerializer(UserSerializer):
    """What registration answers: no id, so that an email that already had an account (which
    gets an unsaved stand-in, see services.user_register) answers exactly as a new one."""

    class Meta(UserSerializer.Meta):
        fields = ("email", "nickname", "role", "created_at")
        read_only_fields = fields

    def get_role(self, user: User) -> str:
        return Role.USER.value  # what registration gives, and the stand-in has no groups to read


class RegisterView(PublicView):
    """201 for a new account and for an email that already has one alike (that owner is mailed);
    400 for a weak password either way; 429 past the address's `registrations_per_hour`."""

    permission_classes = (RegistrationOpen,)

    @extend_schema_serializer(component_name="RegisterRequest")
    class InputSerializer(serializers.Serializer[Any]):
        email = serializers.EmailField(max_length=254)
        password = _password_field()
        nickname = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={201: RegisteredSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data, request=request)
        return Response(RegisteredSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicView):
    """401 `invalid_credentials` for a wrong email or password. An account with two-factor
    sign-in also needs `otp`: without it 401 `otp_required` (ask for the code, send again),
    with a wrong one 401 `invalid_otp`, counted by the login throttle like a wrong password."""

    @extend_schema_serializer(component_name="LoginRequest")
    class InputSerializer(serializers.Serializer[Any]):
        email = serializers.CharField(max_length=254)
        password = _password_field()
        otp = serializers.CharField(
            max_length=64,
            required=False,
            allow_blank=True,
            default="",
            write_only=True,
            help_text="A code from the authenticator app or a recovery code (used up), for accounts "
            "with two-factor sign-in.",
        )

    OutputSerializer = inline_serializer(
        "Login",
        {"access": serializers.CharField(), "refresh": serializers.CharField(), "user": UserSerializer()},
    )

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, pair = services.user_login(**data.validated_data, request=request)
        return Response({"access": pair.access, "refresh": pair.refresh, "user": UserSerializer(user).data})


class RefreshView(PublicView):
    @extend_schema_serializer(component_name="RefreshRequest")
    class InputSerializer(serializers.Serializer[Any]):
        refresh = serializers.CharField(max_length=4096)

    @extend_schema(request=InputSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = tokens.token_refresh(refresh=data.validated_data["refresh"])
        return Response({"access": pair.access, "refresh": pair.refresh})


class LogoutView(APIView):
    @extend_schema_serializer(component_name="LogoutRequest")
    class InputSerializer(serializers.Serializer[Any]):
        refresh = serializers.CharField(max_length=4096)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not isinstance(request.auth, Token):  # only the JWT class authenticates this view
            raise NotAuthenticated()
        services.user_logout(
            user=_user(request), access=request.auth, refresh=data.validated_data["refresh"], request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetView(PublicView):
    @extend_schema_serializer(component_name="PasswordResetRequest")
    class InputSerializer(serializers.Serializer[Any]):
        email = serializers.CharField(max_length=254)

    @extend_schema(
        request=InputSerializer,
        responses={202: OpenApiResponse(description="Sent if an active account has this email.")},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_request(email=data.validated_data["email"], request=request)
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(PublicView):
    @extend_schema_serializer(component_name="PasswordResetConfirmRequest")
    class InputSerializer(serializers.Serializer[Any]):
        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        new_password = _password_field()

    @extend_schema(request=InputSerializer, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_confirm(**data.validated_data, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- /reset-password: the page a reset link opens ---------------------------------------------

PASSWORD_RESET_TEMPLATE = "accounts/reset_password.html"


@sensitive_post_parameters("new_password", "new_password_again")
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def password_reset_page(request: HttpRequest) -> HttpResponse:
    """The link in the reset mail opens this page (FRONTEND_URL is Nexus itself by default): a
    form for the new password, which the reset service sets. A link that does not work (used,
    expired, mistyped) and a password the validators refuse are said on the page, with a 400."""
    source = request.POST if request.method == "POST" else request.GET
    uid, token = source.get("uid", "")[:64], source.get("token", "")[:128]
    errors: list[str] = []
    if request.method == "POST":
        new_password = request.POST.get("new_password", "")
        if new_password != request.POST.get("new_password_again", ""):
            errors.append("The two passwords are not the same.")
        elif len(new_password) > PASSWORD_MAX_LENGTH:
            errors.append(f"A password has at most {PASSWORD_MAX_LENGTH} characters.")
        else:
            try:
                services.password_reset_confirm(
                    uid=uid, token=token, new_password=new_password, request=request
                )
            except ValidationError as exc:
                refused = exc.detail if isinstance(exc.detail, dict) else {}
                errors.extend(str(message) for message in refused.get("new_password", []))
            else:
                return render(request, PASSWORD_RESET_TEMPLATE, {"done": True})
    link_works = services.password_reset_link_valid(uid=uid, token=token)
    context = {"uid": uid, "token": token, "errors": errors, "link_works": link_works}
    status_code = 200 if link_works and not errors else 400
    return render(request, PASSWORD_RESET_TEMPLATE, context, status=status_code)


# --- /users/me ------------------------------------------------------------------------------


class MeView(APIView):
    # What only an admin sets, for someone else: asking for it here is refused outright.
    PRIVILEGED_FIELDS = ("role", "is_active", "is_staff", "is_superuser")

    @extend_schema_serializer(component_name="ProfileUpdate")
    class UpdateSerializer(serializers.Serializer[Any]):
        nickname = serializers.CharField(max_length=64, required=False, allow_blank=True)
        email = serializers.EmailField(max_length=254, required=False)
        password = _password_field(required=False, help_text="The current password; needed for email.")

    @extend_schema_serializer(component_name="AccountDelete")
    class DeleteSerializer(serializers.Serializer[Any]):
        password = _password_field()

    @extend_schema(responses={200: UserSerializer})
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(_user(request)).data)

    @extend_schema(request=UpdateSerializer, responses={200: UserSerializer})
    def patch(self, request: Request) -> Response:
        if isinstance(request.data, dict) and set(request.data) & set(self.PRIVILEGED_FIELDS):
            raise PermissionDenied("You cannot change your own role or status.", code="self_promotion")
        data = self.UpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_profile_update(user=_user(request), **data.validated_data, request=request)
        return Response(UserSerializer(user).data)

    @extend_schema(request=DeleteSerializer, responses={204: None})
    def delete(self, request: Request) -> Response:
        data = self.DeleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_delete(user=_user(request), password=data.validated_data["password"], request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MePasswordView(APIView):
    @extend_schema_serializer(component_name="PasswordChangeRequest")
    class InputSerializer(serializers.Serializer[Any]):
        old_password = _password_field()
        new_password = _password_field()

    @extend_schema(
        request=InputSerializer,
        responses={200: TokenPairSerializer},
        description="Every session of the account ends; the new pair keeps this client signed in.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.password_change(user=_user(request), **data.validated_data, request=request)
        return Response({"access": pair.access, "refresh": pair.refresh})


class MeTwoFactorView(APIView):
    """Two-factor sign-in (TOTP) of the caller: POST starts enrolment, DELETE turns it off."""

    EnrolmentSerializer = inline_serializer(
        "TwoFactorEnrolment",
        {
            "otpauth_url": serializers.CharField(help_text="For the authenticator app (as a QR code)."),
            "secret": serializers.CharField(help_text="The same key, base32, to type in by hand."),
        },
    )

    @extend_schema_serializer(component_name="TwoFactorDisable")
    class DisableSerializer(serializers.Serializer[Any]):
        password = _password_field()
        code = serializers.CharField(max_length=64, help_text="A current code or a recovery code.")

    @extend_schema(
        request=None,
        responses={201: EnrolmentSerializer},
        description="Starts enrolment; the key is shown this once. Sign-in asks for no code until "
        "POST /users/me/2fa/confirm. 409 `two_factor_enabled` when it is on already.",
    )
    def post(self, request: Request) -> Response:
        url, secret = services.two_factor_enrol_start(user=_user(request), request=request)
        return Response({"otpauth_url": url, "secret": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(request=DisableSerializer, responses={204: None})
    def delete(self, request: Request) -> Response:
        data = self.DisableSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.two_factor_disable(user=_user(request), **data.validated_data, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeTwoFactorConfirmView(APIView):
    @extend_schema_serializer(component_name="TwoFactorConfirm")
    class InputSerializer(serializers.Serializer[Any]):
        code = serializers.CharField(max_length=16, help_text="The code the app shows now.")

    OutputSerializer = inline_serializer(
        "TwoFactorRecoveryCodes",
        {"recovery_codes": serializers.ListField(child=serializers.CharField())},
    )

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        description="Turns two-factor sign-in on; the recovery codes (each works once) are shown this once.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = data.validated_data["code"]
        codes = services.two_factor_confirm(user=_user(request), code=code, request=request)
        return Response({"recovery_codes": codes})


# --- /users (admin) -------------------------------------------------------------------------


@extend_schema(parameters=[OpenApiParameter("search", str, description="Part of the email address.")])
class UserListView(generics.ListAPIView[User]):
    permission_classes = (IsAdmin,)
    admin_permissions = {"GET": ("accounts.view_user",)}
    serializer_class = AdminUserSerializer

    def get_queryset(self) -> QuerySet[User]:
        search = self.request.query_params.get("search", "")
        if "\x00" in search:  # PostgreSQL's text cannot hold it: a 500 otherwise
            raise serializers.ValidationError({"search": ["Null characters are not allowed."]})
        return selectors.user_list(search=search)


class UserDetailView(APIView):
    permission_classes = (IsAdmin,)
    admin_permissions = {"GET": ("accounts.view_user",), "PATCH": ("accounts.change_user",)}

    @extend_schema_serializer(component_name="UserAdminUpdate")
    class UpdateSerializer(serializers.Serializer[Any]):
        role = RoleField(required=False)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(responses={200: AdminUserSerializer})
    def get(self, request: Request, user_id: int) -> Response:
        return Response(AdminUserSerializer(selectors.user_get(user_id=user_id)).data)

    @extend_schema(request=UpdateSerializer, responses={200: AdminUserSerializer})
    def patch(self, request: Request, user_id: int) -> Response:
        user = selectors.user_get(user_id=user_id)
        data = self.UpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_admin_update(
            actor=_user(request), user=user, **data.validated_data, request=request
        )
        return Response(AdminUserSerializer(user).data)


# --- /keys ----------------------------------------------------------------------------------


class _KeyLimitsSerializer(serializers.Serializer[Any]):
    """The restriction lists of /keys and /keys/{id}; an empty list lifts a restriction."""

    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="Model names the key may use; empty or absent: every model.",
    )
    allowed_networks = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text="Client address ranges in CIDR form (IPv4 or IPv6); empty or absent: any address.",
    )


class KeyListView(generics.ListAPIView[ApiKey]):
    serializer_class = ApiKeySerializer

    @extend_schema_serializer(component_name="ApiKeyCreate")
    class CreateSerializer(_KeyLimitsSerializer):
        name = serializers.CharField(max_length=100)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list(user=_user(self.request))

    @extend_schema(request=CreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request: Request) -> Response:
        data = self.CreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = services.api_key_create(user=_user(request), **data.validated_data, request=request)
        body = ApiKeyCreatedSerializer(key, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


class KeyDetailView(APIView):
    @extend_schema_serializer(component_name="ApiKeyUpdate")
    class UpdateSerializer(_KeyLimitsSerializer):
        name = serializers.CharField(max_length=100, required=False)

    @extend_schema(responses={200: ApiKeySerializer})
    def get(self, request: Request, key_id: int) -> Response:
        return Response(ApiKeySerializer(selectors.api_key_get(user=_user(request), key_id=key_id)).data)

    @extend_schema(request=UpdateSerializer, responses={200: ApiKeySerializer})
    def patch(self, request: Request, key_id: int) -> Response:
        """Renames the key or changes its restrictions; the fields sent change, the rest stay."""
        key = selectors.api_key_get(user=_user(request), key_id=key_id)
        data = self.UpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.api_key_update(key=key, **data.validated_data, actor=_user(request), request=request)
        return Response(ApiKeySerializer(key).data)

    @extend_schema(responses={204: None}, description="Revokes the key at once; it stays listed.")
    def delete(self, request: Request, key_id: int) -> Response:
        key = selectors.api_key_get(user=_user(request), key_id=key_id)
        services.api_key_revoke(key=key, actor=_user(request), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- /system/audit --------------------------------------------------------------------------


class AuditFilterSerializer(serializers.Serializer[Any]):
    actor = serializers.IntegerField(required=False, help_text="The acting user's id.")
    action = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False, help_text="From this time on (inclusive).")
    until = serializers.DateTimeField(required=False, help_text="Before this time.")


@extend_schema(parameters=[AuditFilterSerializer])
class AuditListView(generics.ListAPIView[AuditEvent]):
    permission_classes = (IsAdmin,)
    admin_permissions = {"GET": ("accounts.view_auditevent",)}
    serializer_class = AuditEventSerializer

    def get_queryset(self) -> QuerySet[AuditEvent]:
        filters = AuditFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        return selectors.audit_event_list(
            actor_id=data.get("actor"),
            action=data.get("action", ""),
            since=data.get("since"),
            until=data.get("until"),
        )
