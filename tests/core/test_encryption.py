"""The key ring and the sealed format: what a configuration may look like, and that any change
to sealed bytes, their place or their key fails authentication."""

import base64
import io
import logging
import os
import re

import pytest

from core.encryption import (
    KEY_BYTES,
    MAGIC,
    RECORD_MAX,
    AuthenticationFailed,
    KeyConfigurationError,
    KeyNotConfigured,
    generate_key_line,
    key_ring,
    load_key_ring,
    record_boundary,
    seal,
    unseal,
)

LINE_A = generate_key_line("A")
LINE_B = generate_key_line("B")
MATERIAL_A = LINE_A.split(":", 1)[1]
CONTEXT = b"session 1, chunk 0"
# Two full records and a short one: more than RECORD_MAX in one piece is cut into records.
LARGE = os.urandom(2 * RECORD_MAX + 12_345)
SMALL_PIECES = [b"a" * 100, b"b" * 50, b"c" * 10]
HEADER_SIZE = len(MAGIC) + 1 + len("A")
RECORD_OVERHEAD = 4 + 12 + 16


@pytest.fixture
def keys(settings):
    """Keys A and B configured, A active."""
    settings.LUCID_ENCRYPTION_KEYS = f"{LINE_A},{LINE_B}"
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "A"
    return settings


def sealed_bytes(pieces, *, key_id="A", context=CONTEXT) -> bytes:
    return b"".join(seal(pieces, key_id=key_id, context=context))


def record_spans(sealed: bytes) -> list[tuple[int, int]]:
    """Where each record of a sealed object under key A starts and ends."""
    spans, position = [], HEADER_SIZE
    while position < len(sealed):
        end = position + RECORD_OVERHEAD + int.from_bytes(sealed[position : position + 4], "big")
        spans.append((position, end))
        position = end
    return spans


def flipped(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def configuration_error(**configuration) -> str:
    with pytest.raises(KeyConfigurationError) as caught:
        load_key_ring(**configuration)
    message = str(caught.value)
    assert MATERIAL_A not in message
    return message


def test_a_keys_file_may_hold_comments_and_blank_lines(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# lucid keys\n\n{LINE_A}   # since March\n  \n{LINE_B}\n")
    path.chmod(0o600)

    ring = load_key_ring(keys_file=str(path), active_key="B")

    assert (ring.active_id, ring.key_ids, ring.warnings) == ("B", ["A", "B"], ())


def test_inline_keys_are_comma_separated_and_join_those_of_the_file(tmp_path):
    path = tmp_path / "keys"
    path.write_text(LINE_A + "\n")
    path.chmod(0o600)
    line_c = generate_key_line("key-2024_c")

    ring = load_key_ring(keys_file=str(path), keys=f" {LINE_B} ,, {line_c} ", active_key="A")

    assert ring.key_ids == ["A", "B", "key-2024_c"]
    assert all(ring.has(key_id) for key_id in ring.key_ids)


def test_no_keys_means_encryption_is_off():
    ring = load_key_ring()

    assert (ring.active_id, ring.key_ids) == (None, [])


NOT_AN_ENTRY = "entry 1 of LUCID_ENCRYPTION_KEYS is not '<id>:<base64"
NOT_A_KEY = "Key 'A' (entry 1 of LUCID_ENCRYPTION_KEYS) is not the base64"


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (f"bad id:{MATERIAL_A}", NOT_AN_ENTRY),
        (f"{'x' * 65}:{MATERIAL_A}", NOT_AN_ENTRY),
        (MATERIAL_A, NOT_AN_ENTRY),
        (f"A:{MATERIAL_A[:-4]}!!!=", NOT_A_KEY),
        (f"A:{MATERIAL_A[:-8]}", NOT_A_KEY),
    ],
    ids=["space-in-id", "id-too-long", "no-id", "bad-base64", "wrong-length"],
)
def test_a_malformed_inline_entry_is_refused_naming_it_without_its_material(entry, named):
    message = configuration_error(keys=entry, active_key="A")

    assert named in message
    assert "manage.py generate_key ID" in message
    assert entry.rpartition(":")[2] not in message


def test_a_key_of_31_bytes_is_refused():
    short = base64.b64encode(os.urandom(KEY_BYTES - 1)).decode()

    message = configuration_error(keys=f"A:{short}", active_key="A")

    assert f"exactly {KEY_BYTES} bytes" in message
    assert short not in message


def test_a_malformed_line_of_the_keys_file_is_named_by_its_number(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# keys\n{LINE_B}\nA:{MATERIAL_A[:20]}\n")

    message = configuration_error(keys_file=str(path), active_key="B")

    assert f"Key 'A' (line 3 of {path})" in message
    assert MATERIAL_A[:20] not in message


def test_a_key_configured_twice_is_refused(tmp_path):
    path = tmp_path / "keys"
    path.write_text(LINE_A + "\n")
    other_a = generate_key_line("A")

    message = configuration_error(keys_file=str(path), keys=other_a, active_key="A")

    assert "Key 'A' is configured twice (entry 1 of LUCID_ENCRYPTION_KEYS)" in message
    assert other_a.split(":", 1)[1] not in message


def test_an_active_key_that_is_not_configured_is_refused():
    message = configuration_error(keys=f"{LINE_A},{LINE_B}", active_key="C")

    assert "LUCID_ENCRYPTION_ACTIVE_KEY names key 'C', which is not configured" in message
    assert "keys configured: A, B" in message
    assert LINE_B.split(":", 1)[1] not in message


def test_an_active_key_without_any_keys_is_refused():
    message = configuration_error(active_key="A")

    assert "(keys configured: none)" in message


def test_keys_without_an_active_key_are_refused():
    message = configuration_error(keys=LINE_A)

    assert "LUCID_ENCRYPTION_ACTIVE_KEY is not set" in message
    assert "one of: A." in message


@pytest.mark.parametrize("problem", ["missing", "directory", "not-ascii"])
def test_an_unreadable_keys_file_is_refused_naming_its_path(tmp_path, problem):
    path = tmp_path / "keys"
    if problem == "directory":
        path.mkdir()
    elif problem == "not-ascii":
        path.write_bytes(LINE_A.encode() + "\n# clé\n".encode())

    message = configuration_error(keys_file=str(path), active_key="A")

    assert f"LUCID_ENCRYPTION_KEYS_FILE {path} cannot be read" in message


def test_a_keys_file_others_may_read_gives_a_warning(settings, tmp_path, caplog):
    path = tmp_path / "keys"
    path.write_text(LINE_A + "\n")
    path.chmod(0o644)
    settings.LUCID_ENCRYPTION_KEYS_FILE = str(path)
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "A"

    with caplog.at_level(logging.WARNING, logger="core.encryption"):
        ring = key_ring()

    (warning,) = ring.warnings
    assert f"{path} can be read by other users (mode 644)" in warning
    assert f"chmod 600 {path}" in warning
    assert [record.getMessage() for record in caplog.records] == [f"encryption: {warning}"]
    assert MATERIAL_A not in caplog.text


def test_a_keys_file_of_mode_0600_gives_no_warning(tmp_path):
    path = tmp_path / "keys"
    path.write_text(LINE_A + "\n")
    path.chmod(0o600)

    assert load_key_ring(keys_file=str(path), active_key="A").warnings == ()


def test_a_generated_line_is_a_valid_key_of_that_id():
    line = generate_key_line("2025-q1_main")

    key_id, material = line.split(":")
    assert key_id == "2025-q1_main"
    assert len(base64.b64decode(material, validate=True)) == KEY_BYTES
    assert load_key_ring(keys=line, active_key=key_id).key_ids == [key_id]
    assert generate_key_line(key_id) != line


@pytest.mark.parametrize("key_id", ["", "a b", "a:b", "x" * 65, "clé"])
def test_a_key_id_that_could_not_be_read_back_is_refused_by_generate(key_id):
    with pytest.raises(ValueError, match="is not valid"):
        generate_key_line(key_id)


def test_a_key_the_ring_lacks_is_key_not_configured_naming_it(keys):
    with pytest.raises(KeyNotConfigured) as caught:
        key_ring().cipher("C")

    assert (caught.value.status_code, caught.value.default_code) == (503, "encryption_key_missing")
    assert "key 'C', which is not configured" in caught.value.message


def test_sealed_bytes_unseal_to_the_pieces_across_several_records(keys):
    pieces = [LARGE[:1000], LARGE[1000:]]

    sealed = sealed_bytes(pieces)

    assert sealed.startswith(MAGIC + b"\x01A")
    assert len(record_spans(sealed)) == 4
    assert unseal(sealed, context=CONTEXT, key_id="A") == LARGE
    assert LARGE[:64] not in sealed


def test_the_same_bytes_seal_differently_each_time(keys):
    assert sealed_bytes([LARGE]) != sealed_bytes([LARGE])


RECORD_PARTS = {
    "length": 3,
    "nonce": 4 + 5,
    "ciphertext-start": 16,
    "ciphertext-middle": 16 + 1000,
    "tag": -1,
}


@pytest.mark.parametrize("record", [0, 1, -1], ids=["first", "second", "last"])
@pytest.mark.parametrize("part", list(RECORD_PARTS))
def test_a_flipped_byte_in_any_part_of_a_record_fails_authentication(keys, record, part):
    sealed = sealed_bytes([LARGE])
    start, end = record_spans(sealed)[record]
    offset = RECORD_PARTS[part]
    position = (end if offset < 0 else start) + offset

    with pytest.raises(AuthenticationFailed):
        unseal(flipped(sealed, position), context=CONTEXT, key_id="A")


def test_a_flipped_byte_anywhere_in_a_small_object_fails_authentication(keys):
    sealed = sealed_bytes(SMALL_PIECES)

    for position in range(len(sealed)):
        with pytest.raises(AuthenticationFailed):
            unseal(flipped(sealed, position), context=CONTEXT, key_id="A")


def test_records_swapped_within_an_object_fail_authentication(keys):
    sealed = sealed_bytes([b"x" * 100, b"y" * 100])
    (first, second) = (sealed[start:end] for start, end in record_spans(sealed))

    swapped = sealed[:HEADER_SIZE] + second + first

    with pytest.raises(AuthenticationFailed):
        unseal(swapped, context=CONTEXT, key_id="A")


def test_an_object_read_for_another_context_fails_authentication(keys):
    sealed = sealed_bytes([LARGE[:5000]])

    with pytest.raises(AuthenticationFailed):
        unseal(sealed, context=b"session 1, chunk 1", key_id="A")


def test_an_object_sealed_under_another_key_fails_authentication(keys):
    sealed = sealed_bytes([LARGE[:5000]], key_id="B")

    with pytest.raises(AuthenticationFailed, match="another key"):
        unseal(sealed, context=CONTEXT, key_id="A")


def test_the_header_relabelled_to_another_key_fails_authentication(keys):
    sealed = sealed_bytes([LARGE[:5000]], key_id="B")

    relabelled = MAGIC + b"\x01A" + sealed[HEADER_SIZE:]

    with pytest.raises(AuthenticationFailed):
        unseal(relabelled, context=CONTEXT, key_id="A")


def test_the_same_key_id_with_other_key_material_fails_authentication(keys, settings):
    sealed = sealed_bytes([LARGE[:5000]])
    settings.LUCID_ENCRYPTION_KEYS = generate_key_line("A")

    with pytest.raises(AuthenticationFailed):
        unseal(sealed, context=CONTEXT, key_id="A")


def test_bytes_that_are_not_a_sealed_object_fail_authentication(keys):
    with pytest.raises(AuthenticationFailed, match="not a sealed object"):
        unseal(LARGE[:5000], context=CONTEXT, key_id="A")


def test_an_object_cut_inside_a_record_fails_authentication(keys):
    sealed = sealed_bytes(SMALL_PIECES)
    _, end = record_spans(sealed)[0]

    for cut in (end + 3, end + 20, len(sealed) - 1):
        with pytest.raises(AuthenticationFailed, match="cut short"):
            unseal(sealed[:cut], context=CONTEXT, key_id="A")


def test_an_object_cut_at_a_record_boundary_unseals_to_fewer_bytes(keys):
    """The format cannot tell; the caller compares with the size it recorded (for a chunk:
    `chunk_damaged`, "truncated", see tests/chunks_app/test_encryption.py)."""
    sealed = sealed_bytes(SMALL_PIECES)
    _, end = record_spans(sealed)[1]

    assert unseal(sealed[:end], context=CONTEXT, key_id="A") == b"a" * 100 + b"b" * 50
    assert unseal(sealed[:HEADER_SIZE], context=CONTEXT, key_id="A") == b""


@pytest.mark.parametrize("position", [0, 100, 150, 160])
def test_record_boundary_is_where_the_records_up_to_a_plaintext_position_end(keys, position):
    sealed = sealed_bytes(SMALL_PIECES)
    ends = {0: HEADER_SIZE} | {
        plaintext: end
        for plaintext, (_, end) in zip((100, 150, 160), record_spans(sealed), strict=True)
    }

    assert record_boundary(io.BytesIO(sealed), position=position) == ends[position]


@pytest.mark.parametrize("position", [50, 155, 161])
def test_record_boundary_fails_where_no_record_ends(keys, position):
    with pytest.raises(AuthenticationFailed, match=re.escape(f"no record ends at byte {position}")):
        record_boundary(io.BytesIO(sealed_bytes(SMALL_PIECES)), position=position)


def test_record_boundary_fails_on_a_record_cut_short(keys):
    sealed = sealed_bytes(SMALL_PIECES)

    with pytest.raises(AuthenticationFailed):
        record_boundary(io.BytesIO(sealed[:-1]), position=160)
