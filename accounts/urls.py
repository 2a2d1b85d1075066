"""HTTP routes of the accounts app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from accounts import services, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/password/reset", views.PasswordResetView.as_view(), name="auth-password-reset"),
    path(
        "auth/password/reset/confirm",
        views.PasswordResetConfirmView.as_view(),
        name="auth-password-reset-confirm",
    ),
    # Where the reset mail's links point while FRONTEND_URL is Nexus itself (its default).
    path(services.PASSWORD_RESET_PATH.lstrip("/"), views.password_reset_page, name="password-reset-page"),
    path("users/me", views.MeView.as_view(), name="users-me"),
    path("users/me/password", views.MePasswordView.as_view(), name="users-me-password"),
    path("users/me/2fa", views.MeTwoFactorView.as_view(), name="users-me-2fa"),
    path("users/me/2fa/confirm", views.MeTwoFactorConfirmView.as_view(), name="users-me-2fa-confirm"),
    path("users", views.UserListView.as_view(), name="users"),
    path("users/<int:user_id>", views.UserDetailView.as_view(), name="user-detail"),
    path("keys", views.KeyListView.as_view(), name="keys"),
    path("keys/<int:key_id>", views.KeyDetailView.as_view(), name="key-detail"),
    path("system/audit", views.AuditListView.as_view(), name="system-audit"),
]
