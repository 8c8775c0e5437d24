"""The one exception tree of gantune: the library raises these, only the CLI turns them into exit codes."""


class GantuneError(Exception):
    """Base of every error gantune raises on purpose; its message is one line a user can act on."""


class ConfigError(GantuneError):
    """A config key or value is unknown or out of range."""


class DataError(GantuneError):
    """A dataset spec, folder or image cannot be used."""


class CheckpointError(GantuneError):
    """A checkpoint file is missing, corrupt or does not fit the config."""


class DeviceError(GantuneError):
    """The requested device is not available."""
