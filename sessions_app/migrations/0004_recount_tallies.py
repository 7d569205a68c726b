from django.db import migrations
from django.db.models import Count, Q, Sum

CHUNK_STATUSES = ("received", "processing", "stored", "failed")
SESSION_STATUSES = ("created", "recording", "paused", "stopped", "failed")


def recount(apps, schema_editor):
    """Fill the running totals from the rows they count."""
    Session = apps.get_model("sessions_app", "Session")
    Chunk = apps.get_model("chunks_app", "Chunk")
    Counter = apps.get_model("lucid", "Counter")
    waiting = Q(chunks__status__in=["received", "processing"])
    for session in Session.objects.annotate(
        **{f"n_{s}": Count("chunks", filter=Q(chunks__status=s)) for s in CHUNK_STATUSES},
        n_backlog=Sum("chunks__size", filter=waiting, default=0),
        n_us=Sum("chunks__processing_ms", filter=Q(chunks__status="stored"), default=0),
    ):
        for status in CHUNK_STATUSES:
            setattr(session, f"chunks_{status}", getattr(session, f"n_{status}"))
        session.backlog_bytes = session.n_backlog
        session.processing_us = round(session.n_us * 1000)
        session.save()
    totals = {f"sessions.{s}": Session.objects.filter(status=s).count() for s in SESSION_STATUSES}
    totals.update({f"chunks.{s}": Chunk.objects.filter(status=s).count() for s in CHUNK_STATUSES})
    sums = Chunk.objects.aggregate(
        raw=Sum("size", default=0),
        stored=Sum("compressed_size", filter=Q(status="stored"), default=0),
        backlog=Sum("size", filter=Q(status__in=["received", "processing"]), default=0),
    )
    totals.update(
        {
            "chunks.raw_bytes": sums["raw"],
            "chunks.stored_bytes": sums["stored"],
            "chunks.backlog_bytes": sums["backlog"],
            "ingest.bytes_total": sums["raw"],
        }
    )
    Counter.objects.bulk_create([Counter(key=k, value=v) for k, v in totals.items()])


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0003_chunk_tallies"),
        ("chunks_app", "0001_initial"),
        ("lucid", "0001_counters"),
    ]

    operations = [migrations.RunPython(recount, migrations.RunPython.noop)]
