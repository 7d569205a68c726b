"""Query filters of the chunk list."""

import django_filters

from chunks_app.models import Chunk
from core.choices import ChunkStatus


class ChunkFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ChunkStatus.choices)

    class Meta:
        model = Chunk
        fields = ["status"]
