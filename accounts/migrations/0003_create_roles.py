"""The two roles as groups: `admin` carries every permission there is, `user` none.

Existing accounts get a role too: superusers and staff become admins, everyone else a user.
Permissions of models created later are granted to `admin` by accounts.apps after `migrate`.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    # Permissions are normally created after every migration has run; the admin group
    # needs them now, so create those of the apps migrated so far.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    User = apps.get_model("accounts", "User")
    admin, _ = Group.objects.get_or_create(name="admin")
    user, _ = Group.objects.get_or_create(name="user")
    admin.permissions.add(*Permission.objects.all())

    admins = User.objects.filter(is_superuser=True) | User.objects.filter(is_staff=True)
    admin.user_set.add(*admins)
    User.objects.filter(is_superuser=True).update(is_staff=True)
    user.user_set.add(*User.objects.exclude(pk__in=admins.values("pk")))


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=("admin", "user")).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_roles_and_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
