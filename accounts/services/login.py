"""Login, refresh and logout, on the API and the console; bearer tokens."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.debug import sensitive_variables
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import Token

from accounts import throttles, tokens, two_factor
from accounts.errors import TooManyAttempts
from accounts.models import ApiKey, User, normalize_email
from accounts.services.api_keys import API_KEY_PREFIX, api_key_authenticate
from accounts.services.audit import AnyRequest, _http_request, audit_event_record
from accounts.tokens import TokenPair


def _login_failed(*, email: str, request: AnyRequest, via: str, action: str = "login.failed") -> None:
    audit_event_record(
        action=action,
        actor=User.objects.filter(email=email).first(),
        target=email,
        request=request,
        metadata={"via": via},
    )


def _login_attempt_begin(*, email: str, request: AnyRequest, via: str) -> throttles.Attempt:
    """Counts the attempt; one refused by the throttle is audited too (`login.throttled`)."""
    try:
        return throttles.login_attempt_begin(request=request, email=email)
    except TooManyAttempts:
        _login_failed(email=email, request=request, via=via, action="login.throttled")
        raise


@sensitive_variables("password", "otp")
def user_login(*, email: str, password: str, otp: str = "", request: AnyRequest) -> tuple[User, TokenPair]:
    """A token pair for the right credentials; one generic 401 for anything else.

    The attempt is counted (accounts.throttles) before any password is checked, atomically,
    so simultaneous attempts get exactly the limit through; it is given back when the password
    was right. Django's backend hashes even for an unknown email, so timing tells nothing;
    every hash waits for a slot (accounts.hashers: 503 busy when none frees in time).

    An account with two-factor sign-in also needs `otp`, a TOTP or recovery code: without one,
    401 `otp_required` (the attempt given back: the password was right); a wrong one, 401
    `invalid_otp`, stays counted as a failure, so codes are guessed no faster than passwords.
    """
    email = normalize_email(email)
    attempt = _login_attempt_begin(email=email, request=request, via="api")
    try:
        user = authenticate(_http_request(request), email=email, password=password)
    except BaseException:  # busy, or the database: the password was not checked
        throttles.login_attempt_unchecked(attempt)
        raise
    if not isinstance(user, User):
        _login_failed(email=email, request=request, via="api")
        raise AuthenticationFailed("The email or password is not correct.", code="invalid_credentials")
    device = None
    if two_factor.user_has_2fa(user):
        if not otp:
            throttles.login_attempt_succeeded(attempt)
            audit_event_record(
                action="login.otp_required", actor=user, target=f"user:{user.pk}", request=request
            )
            raise AuthenticationFailed(
                "This account has two-factor sign-in: send the code from your app as `otp`.",
                code="otp_required",
            )
        device = two_factor.code_verify(user, otp)
        if device is None:
            _login_failed(email=email, request=request, via="api", action="login.otp_failed")
            raise AuthenticationFailed("The two-factor code is not correct.", code="invalid_otp")
    throttles.login_attempt_succeeded(attempt)
    update_last_login(User, user)
    audit_event_record(
        action="login.succeeded",
        actor=user,
        target=f"user:{user.pk}",
        request=request,
        metadata={"via": "api", **_second_factor(device)},
    )
    return user, tokens.token_pair_issue(user=user)


def _second_factor(device: Device | None) -> dict[str, str]:
    """What the audit records of the code that signed someone in: its kind, never the code."""
    if device is None:
        return {}
    return {"otp": "recovery_code" if isinstance(device, StaticDevice) else "totp"}


def console_login(*, request: HttpRequest, sign_in: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """The console's (/admin/login/) sign-in, `sign_in` being the admin site's own login view:
    on the API's counters and audited alike.

    The view is wrapped rather than its form replaced, so a later step of the console's
    sign-in (a second factor) is inside the same count. Success is the view signing someone in
    (a redirect with an authenticated user); anything else with credentials is a failure.
    Raises TooManyAttempts (429), HashingBusy or ServiceUnavailable (503).
    """
    email = normalize_email(str(request.POST.get("username", "")))
    if request.method != "POST" or not email or not request.POST.get("password"):
        return sign_in()  # nothing to check: the form, or its own "this field is required"
    attempt = _login_attempt_begin(email=email, request=request, via="console")
    try:
        response = sign_in()
    except BaseException:
        throttles.login_attempt_unchecked(attempt)
        raise
    user = getattr(request, "user", None)
    if response.status_code in (301, 302, 303) and isinstance(user, User) and user.is_authenticated:
        throttles.login_attempt_succeeded(attempt)
        audit_event_record(
            action="login.succeeded",
            actor=user,
            target=f"user:{user.pk}",
            request=request,
            metadata={"via": "console", **_second_factor(getattr(user, "otp_device", None))},
        )
    else:
        action = getattr(request, two_factor.CONSOLE_FAILURE_ATTRIBUTE, "login.failed")
        _login_failed(email=email, request=request, via="console", action=action)
    return response


def user_logout(*, user: User, access: Token, refresh: str, request: AnyRequest | None = None) -> None:
    tokens.session_end(user=user, access=access, refresh=refresh)
    audit_event_record(action="user.logged_out", actor=user, target=f"user:{user.pk}", request=request)


def bearer_authenticate(*, token: str) -> tuple[User, ApiKey | None]:
    """For callers outside DRF (the WebSocket): a JWT access token or an `nx-` API key.

    Same rules as the HTTP endpoints; raises AuthenticationFailed, or ServiceUnavailable
    (503, an APIException too) when the token denylist cannot be read.
    """
    token = token.strip()
    if token.startswith(API_KEY_PREFIX):
        return api_key_authenticate(key=token)
    user, _ = tokens.access_token_authenticate(token)
    return user, None
