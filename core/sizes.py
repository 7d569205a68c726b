"""Units of size."""

MIB = 1024 * 1024
