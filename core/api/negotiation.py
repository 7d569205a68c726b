"""Content negotiation for views whose body is not JSON: bytes, playlists."""

from rest_framework.negotiation import DefaultContentNegotiation


class MediaNegotiation(DefaultContentNegotiation):
    """Serve whatever `Accept` asks for: the body's type is the resource's own (a recording's
    media type, a playlist), not a choice of renderers; errors stay JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
