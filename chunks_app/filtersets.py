"""Query filters of the chunk list."""

import django_filters

from chunks_app.choices import ChunkStatus
from chunks_app.models import Chunk


class ChunkFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ChunkStatus.choices)

    class Meta:
        model = Chunk
        fields = ["status"]
