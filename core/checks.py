"""System checks: every role (`serve`, `migrate`, `check`) refuses to start on an error here."""

from django.core.checks import Error, Tags, Warning, register

from core.encryption import KeyConfigurationError, key_ring


@register(Tags.security)
def encryption_keys_check(app_configs, **kwargs) -> list:
    """The encryption keys parse, and the active one is among them."""
    key_ring.cache_clear()
    try:
        ring = key_ring()
    except KeyConfigurationError as error:
        return [Error(str(error), id="lucid.E001")]
    return [Warning(warning, id="lucid.W001") for warning in ring.warnings]
