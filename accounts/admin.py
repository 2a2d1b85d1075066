"""The operator's console for accounts."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


class UserCreationForm(auth_forms.BaseUserCreationForm[User]):
    class Meta:
        model = User
        fields = ("email", "nickname")


class UserChangeForm(auth_forms.UserChangeForm[User]):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ("-created_at",)
    list_display = ("email", "nickname", "is_active", "is_staff", "created_at", "last_login")
    list_filter = ("is_active", "is_staff", "groups")
    search_fields = ("email", "nickname")
    readonly_fields = ("created_at", "last_login")
    fieldsets = (
        (None, {"fields": ("email", "password", "nickname")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("created_at", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "nickname", "password1", "password2")}),
    )
