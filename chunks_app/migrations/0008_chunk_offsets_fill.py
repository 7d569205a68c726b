"""Each existing chunk's offset in its recording: the sizes of the chunks before it, in sequence.

A session still recording places only the chunks before its first missing sequence; the others
are placed as the missing ones arrive, or at stop.
"""

from django.db import migrations

BATCH = 1000


def fill_offsets(apps, schema_editor):
    chunk_model = apps.get_model("chunks_app", "Chunk")
    session_model = apps.get_model("sessions_app", "Session")
    stopped = set(session_model.objects.filter(status="stopped").values_list("pk", flat=True))
    session_ids = chunk_model.objects.values_list("session_id", flat=True).distinct()
    for session_id in list(session_ids):
        chunks = chunk_model.objects.filter(session_id=session_id).order_by("sequence")
        position, pending = 0, []
        columns = ("pk", "sequence", "size")
        for index, chunk in enumerate(chunks.only(*columns).iterator(chunk_size=BATCH)):
            if session_id not in stopped and chunk.sequence != index:
                break
            chunk.offset = position
            position += chunk.size
            pending.append(chunk)
            if len(pending) == BATCH:
                chunk_model.objects.bulk_update(pending, ["offset"])
                pending = []
        chunk_model.objects.bulk_update(pending, ["offset"])


class Migration(migrations.Migration):
    dependencies = [("chunks_app", "0007_time_marks_and_offsets")]

    operations = [migrations.RunPython(fill_offsets, migrations.RunPython.noop)]
