"""Small, app-independent building blocks shared by every Nexus app."""
