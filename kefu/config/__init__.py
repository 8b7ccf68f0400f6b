"""The one place kefu reads configuration from: environment (``KEFU_*``) and an optional YAML file."""

from kefu.config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
