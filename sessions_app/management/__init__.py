"""Management commands of the sessions app."""
