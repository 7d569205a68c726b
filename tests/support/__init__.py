"""The black-box harness: the service's real processes on free ports, spoken to over HTTP only."""
