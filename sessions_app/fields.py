"""The session's field names, read by its serializer, its services, the backup format and tests."""

SESSION_RECORDING_FORMAT_FIELDS = ("chunk_size", "compression_algorithm", "compression_level")
SESSION_FIELDS_FIXED_AFTER_CREATED = (*SESSION_RECORDING_FORMAT_FIELDS, "content_type")
SESSION_TIMESTAMP_FIELDS = ("created_at", "updated_at", "started_at", "stopped_at")
SESSION_TOTAL_FIELDS = ("chunk_count", "size", "compressed_size")

SESSION_API_FIELDS = (
    "id",
    "name",
    "owner",
    "host",
    "remote_user",
    "client_address",
    "metadata",
    "content_type",
    "status",
    *SESSION_RECORDING_FORMAT_FIELDS,
    "retention_days",
    "legal_hold",
    *SESSION_TIMESTAMP_FIELDS,
    *SESSION_TOTAL_FIELDS,
    "compression_ratio",
    "complete",
    "duration_ms",
)
"""What the API shows of a session, in this order."""

SESSION_READ_ONLY_FIELDS = (
    "id",
    "owner",
    "status",
    *SESSION_TIMESTAMP_FIELDS,
    *SESSION_TOTAL_FIELDS,
    "compression_ratio",
    "complete",
    "duration_ms",
)
"""What the API shows but never takes: the owner is the caller, the rest Lucid keeps."""

SESSION_WRITABLE_FIELDS = tuple(
    name for name in SESSION_API_FIELDS if name not in SESSION_READ_ONLY_FIELDS
)
"""What a client sets, and `session_update` changes."""

SESSION_RECORD_DATETIME_FIELDS = (*SESSION_TIMESTAMP_FIELDS, "last_data_at")
SESSION_RECORD_FIELDS = (
    *(name for name in SESSION_API_FIELDS if name in (*SESSION_WRITABLE_FIELDS, "status")),
    "processing_us",
    "ingest_mode",
    "stream_offset",
    "merkle_root",
    "duration_ms",
    *SESSION_RECORD_DATETIME_FIELDS,
)
"""What a backup keeps of a session besides its id and owner; its chunks give the other totals
and `complete`."""
