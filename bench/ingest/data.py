"""Seeded test data: screen-like frames of an RDP desktop, and random bytes, cut into chunks."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

SCREEN_WIDTH, SCREEN_HEIGHT, BYTES_PER_PIXEL = 1920, 1080, 4
GLYPH_WIDTH, GLYPH_HEIGHT, GLYPH_COUNT = 8, 16, 96
BLANK_GLYPH = 0

Colour = tuple[int, int, int]
Glyphs = list[list[bytes]]
TextLine = list[int]


class Rect(NamedTuple):
    left: int
    top: int
    width: int
    height: int


DESKTOP_BLUE: Colour = (0, 90, 160)
TASKBAR_GREY: Colour = (20, 24, 28)
TITLE_BAR_GREY: Colour = (220, 220, 230)
PAPER_WHITE: Colour = (250, 250, 250)
INK_BLACK: Colour = (30, 30, 30)
TERMINAL_GREY: Colour = (200, 200, 200)

EDITOR = Rect(60, 70, 1140, 896)
EDITOR_TITLE_BAR = Rect(60, 40, 1140, 30)
TERMINAL = Rect(1240, 520, 624, 480)
PHOTO = Rect(1240, 60, 624, 400)
TASKBAR = Rect(0, 1040, 1920, 40)
CLOCK_POSITION = (1840, 1052)


def bgra(colour: Colour) -> bytes:
    red, green, blue = colour
    return bytes((blue, green, red, 255))


def glyph_atlas(rng: random.Random, *, ink: Colour, paper: Colour) -> Glyphs:
    """Bitmaps of GLYPH_COUNT made-up characters, one row of BGRA bytes per pixel row."""
    ink_pixel, paper_pixel = bgra(ink), bgra(paper)
    blank_row = paper_pixel * GLYPH_WIDTH
    glyphs = [[blank_row] * GLYPH_HEIGHT]
    for _ in range(GLYPH_COUNT - 1):
        glyph = [blank_row] * 3
        for _ in range(GLYPH_HEIGHT - 6):
            pixels = (ink_pixel if rng.random() < 0.35 else paper_pixel for _ in range(GLYPH_WIDTH))
            glyph.append(b"".join(pixels))
        glyph += [blank_row] * 3
        glyphs.append(glyph)
    return glyphs


def random_text_line(rng: random.Random, columns: int) -> TextLine:
    """Words of 2-9 characters up to a ragged right edge, padded with blanks to `columns`."""
    length = rng.randint(columns // 3, columns)
    line: TextLine = []
    while len(line) < length:
        line += [rng.randrange(1, GLYPH_COUNT) for _ in range(rng.randint(2, 9))]
        line.append(BLANK_GLYPH)
    return line[:length] + [BLANK_GLYPH] * (columns - length)


def noisy_photo_rows(rng: random.Random, width: int, height: int) -> list[bytes]:
    """A vertical gradient with 5 bits of noise per channel: the part of a screen that resists."""
    rows = []
    for y in range(height):
        brightness = 40 + 160 * y // height
        noise_to_channel = bytes((brightness + (value & 0x1F)) & 0xFF for value in range(256))
        row = bytearray(rng.randbytes(width * BYTES_PER_PIXEL).translate(noise_to_channel))
        row[3::BYTES_PER_PIXEL] = b"\xff" * width
        rows.append(bytes(row))
    return rows


def fill_rectangle(frame: bytearray, rect: Rect, colour: Colour) -> None:
    row = bgra(colour) * rect.width
    for y in range(rect.top, rect.top + rect.height):
        offset = (y * SCREEN_WIDTH + rect.left) * BYTES_PER_PIXEL
        frame[offset : offset + len(row)] = row


def draw_rows(frame: bytearray, left: int, top: int, rows: Sequence[bytes]) -> None:
    for y, row in enumerate(rows, start=top):
        offset = (y * SCREEN_WIDTH + left) * BYTES_PER_PIXEL
        frame[offset : offset + len(row)] = row


def draw_text(frame: bytearray, glyphs: Glyphs, left: int, top: int, lines: list[TextLine]) -> None:
    rows = [
        b"".join(glyphs[glyph][glyph_row] for glyph in line)
        for line in lines
        for glyph_row in range(GLYPH_HEIGHT)
    ]
    draw_rows(frame, left, top, rows)


def text_capacity(rect: Rect) -> tuple[int, int]:
    """Columns and lines of text that fit in `rect`."""
    return rect.width // GLYPH_WIDTH, rect.height // GLYPH_HEIGHT


class Desktop:
    """A mostly static RDP desktop: per frame a word is typed, a terminal scrolls, a clock ticks."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.editor_glyphs = glyph_atlas(rng, ink=INK_BLACK, paper=PAPER_WHITE)
        self.terminal_glyphs = glyph_atlas(rng, ink=TERMINAL_GREY, paper=TASKBAR_GREY)
        editor_columns, editor_lines = text_capacity(EDITOR)
        terminal_columns, terminal_lines = text_capacity(TERMINAL)
        self.editor = [random_text_line(rng, editor_columns) for _ in range(editor_lines - 1)]
        self.editor.append([BLANK_GLYPH] * editor_columns)
        self.terminal = [random_text_line(rng, terminal_columns) for _ in range(terminal_lines)]
        self.typed_columns = 0
        self.frame_number = 0
        self.static_screen = self.draw_static_screen()

    def draw_static_screen(self) -> bytes:
        frame = bytearray(bgra(DESKTOP_BLUE) * (SCREEN_WIDTH * SCREEN_HEIGHT))
        fill_rectangle(frame, TASKBAR, TASKBAR_GREY)
        fill_rectangle(frame, EDITOR_TITLE_BAR, TITLE_BAR_GREY)
        fill_rectangle(frame, EDITOR, PAPER_WHITE)
        fill_rectangle(frame, TERMINAL, TASKBAR_GREY)
        photo = noisy_photo_rows(self.rng, PHOTO.width, PHOTO.height)
        draw_rows(frame, PHOTO.left, PHOTO.top, photo)
        return bytes(frame)

    def next_frame(self) -> bytes:
        self.type_word()
        self.terminal = self.terminal[1:] + [random_text_line(self.rng, len(self.terminal[0]))]
        self.frame_number += 1
        frame = bytearray(self.static_screen)
        draw_text(frame, self.editor_glyphs, EDITOR.left, EDITOR.top, self.editor)
        draw_text(frame, self.terminal_glyphs, TERMINAL.left, TERMINAL.top, self.terminal)
        clock = [1 + (self.frame_number // 10**place) % 10 for place in reversed(range(5))]
        draw_text(frame, self.terminal_glyphs, *CLOCK_POSITION, [clock])
        cursor_left = EDITOR.left + self.typed_columns * GLYPH_WIDTH
        cursor_top = EDITOR.top + (len(self.editor) - 1) * GLYPH_HEIGHT
        fill_rectangle(frame, Rect(cursor_left, cursor_top, 2, GLYPH_HEIGHT), INK_BLACK)
        return bytes(frame)

    def type_word(self) -> None:
        columns = len(self.editor[0])
        word = [self.rng.randrange(1, GLYPH_COUNT) for _ in range(self.rng.randint(2, 9))]
        if self.typed_columns + len(word) + 1 > columns:
            self.editor = self.editor[1:] + [[BLANK_GLYPH] * columns]
            self.typed_columns = 0
        line = self.editor[-1]
        line[self.typed_columns : self.typed_columns + len(word)] = word
        self.typed_columns += len(word) + 1


def screen_chunks(count: int, chunk_size: int, seed: int) -> list[bytes]:
    """Consecutive 1920x1080 BGRA frames of a desktop session, cut into chunks."""
    desktop = Desktop(random.Random(seed))
    stream = bytearray()
    chunks: list[bytes] = []
    while len(chunks) < count:
        stream += desktop.next_frame()
        while len(stream) >= chunk_size and len(chunks) < count:
            chunks.append(bytes(stream[:chunk_size]))
            del stream[:chunk_size]
    return chunks


def random_chunks(count: int, chunk_size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(chunk_size) for _ in range(count)]


DATA_KINDS: dict[str, Callable[[int, int, int], list[bytes]]] = {
    "screen": screen_chunks,
    "random": random_chunks,
}
