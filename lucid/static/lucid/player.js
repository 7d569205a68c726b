/**
 * The session page's player: a fragmented-MP4 recording played over Media Source Extensions.
 *
 * The bytes before the first time mark are the init segment; each mark starts a fragment. A
 * stopped recording's fragments come from its timeline; a live one's from its playlist, which
 * lists only the fragments whose bytes are all stored and grows until it ends. Only the
 * fragments from the play position to BUFFER_AHEAD_SECONDS ahead are fetched, as byte ranges
 * of /recording.
 */

const BUFFER_AHEAD_SECONDS = 15;
const BUFFER_BEHIND_SECONDS = 30;
// Fragments fetched together in one Range request: fewer requests (each one is audited).
const FETCH_SECONDS = 5;
const LIVE_POLL_MS = 2000;
// A live recording starts this many fragments behind its newest one.
const LIVE_EDGE_FRAGMENTS = 3;
const FALLBACK_CODEC = "avc1.42E01E";
const TIMELINE_PAGE_SIZE = 1000;
// The fields of a VisualSampleEntry (ISO 14496-12) before its child boxes.
const VISUAL_SAMPLE_ENTRY_SIZE = 78;

// --- HTTP ---------------------------------------------------------------------------------------

async function fetchOk(url, options = {}) {
  // Past the browser's cache: a live recording's ETag changes with each chunk, and a cached
  // partial copy turns a Range request into If-Range, answered with the whole recording.
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store", ...options });
  if (!response.ok) {
    const path = new URL(url, window.location.href).pathname;
    throw new Error(`${path} answered ${response.status}`);
  }
  return response;
}

/** Bytes `start` up to `end` (exclusive; null: to the recording's end) of the recording. */
async function fetchBytes(url, start, end, signal) {
  const range = end === null ? `bytes=${start}-` : `bytes=${start}-${end - 1}`;
  const response = await fetchOk(url, { headers: { Range: range }, signal });
  if (response.status !== 206) {
    throw new Error(`the recording answered ${response.status} to Range ${range}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

// --- where the fragments lie --------------------------------------------------------------------

/** The fragments between consecutive marks; the last one lasts until `durationMs`. */
function fragmentsBetween(marks, durationMs) {
  return marks.map((mark, index) => {
    const following = marks[index + 1];
    const previous = marks[index - 1];
    let endMs = following?.time_ms;
    if (endMs === undefined) {
      const guessMs = previous ? mark.time_ms - previous.time_ms : 1000;
      endMs = durationMs > mark.time_ms ? durationMs : mark.time_ms + guessMs;
    }
    return {
      start: mark.time_ms / 1000,
      end: endMs / 1000,
      offset: mark.offset,
      endOffset: following ? following.offset : null,
      buffered: false,
    };
  });
}

/** A stopped recording's layout from all pages of its timeline. */
async function timelineLayout(url) {
  const marks = [];
  let durationMs = null;
  let next = `${url}?page_size=${TIMELINE_PAGE_SIZE}`;
  while (next) {
    const page = await (await fetchOk(next)).json();
    marks.push(...page.marks);
    durationMs = page.duration_ms;
    next = page.next;
  }
  const unplaced = marks.findIndex((mark) => mark.offset === null);
  const placed = unplaced === -1 ? marks : marks.slice(0, unplaced);
  return {
    initSize: placed.length ? placed[0].offset : null,
    fragments: fragmentsBetween(placed, durationMs),
    ended: true,
  };
}

/** The layout an HLS media playlist of byte ranges describes (times from its EXTINFs). */
function playlistLayout(text) {
  const layout = { initSize: null, fragments: [], ended: false };
  let seconds = 0;
  let range = null;
  let time = 0;
  let nextOffset = 0;
  for (const line of text.split("\n").map((item) => item.trim())) {
    if (line.startsWith("#EXT-X-MAP:")) {
      const found = /BYTERANGE="(\d+)@0"/.exec(line);
      layout.initSize = found ? Number(found[1]) : null;
    } else if (line.startsWith("#EXTINF:")) {
      seconds = Number.parseFloat(line.slice("#EXTINF:".length));
    } else if (line.startsWith("#EXT-X-BYTERANGE:")) {
      const [length, offset] = line.slice("#EXT-X-BYTERANGE:".length).split("@");
      range = { length: Number(length), offset: offset ? Number(offset) : nextOffset };
    } else if (line === "#EXT-X-ENDLIST") {
      layout.ended = true;
    } else if (line && !line.startsWith("#") && range) {
      const endOffset = range.offset + range.length;
      layout.fragments.push({
        start: time,
        end: time + seconds,
        offset: range.offset,
        endOffset,
        buffered: false,
      });
      time += seconds;
      nextOffset = endOffset;
      range = null;
    }
  }
  return layout;
}

// --- the codec, from the init segment -----------------------------------------------------------

/** The boxes laid out in `bytes` from `start` to `end`: their type and payload's bounds. */
function* boxes(bytes, start, end) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = start;
  while (offset + 8 <= end) {
    let size = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    let payload = offset + 8;
    if (size === 1) {
      size = Number(view.getBigUint64(payload));
      payload += 8;
    } else if (size === 0) {
      size = end - offset;
    }
    if (size < payload - offset || offset + size > end) return;
    yield { type, start: payload, end: offset + size };
    offset += size;
  }
}

function child(bytes, box, type) {
  for (const found of boxes(bytes, box.start, box.end)) {
    if (found.type === type) return found;
  }
  return null;
}

function hex(byte) {
  return byte.toString(16).toUpperCase().padStart(2, "0");
}

/** `avc1.PPCCLL` from the first AVC track's avcC (profile, compatibility, level), or null. */
function avcCodec(init) {
  const whole = { start: 0, end: init.length };
  const moov = child(init, whole, "moov");
  if (!moov) return null;
  for (const trak of boxes(init, moov.start, moov.end)) {
    if (trak.type !== "trak") continue;
    let box = trak;
    for (const type of ["mdia", "minf", "stbl", "stsd"]) {
      box = box && child(init, box, type);
    }
    if (!box) continue;
    // stsd: version and flags, an entry count, then the sample entries.
    for (const entry of boxes(init, box.start + 8, box.end)) {
      if (entry.type !== "avc1" && entry.type !== "avc3") continue;
      const avcC = child(
        init,
        { start: entry.start + VISUAL_SAMPLE_ENTRY_SIZE, end: entry.end },
        "avcC",
      );
      if (avcC && avcC.end - avcC.start >= 4) {
        const [profile, compatibility, level] = init.subarray(avcC.start + 1, avcC.start + 4);
        return `${entry.type}.${hex(profile)}${hex(compatibility)}${hex(level)}`;
      }
    }
  }
  return null;
}

// --- the player ---------------------------------------------------------------------------------

function clockText(seconds) {
  const whole = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const [hours, minutes] = [Math.floor(whole / 3600), Math.floor(whole / 60) % 60];
  const pad = (value) => String(value).padStart(2, "0");
  return hours ? `${hours}:${pad(minutes)}:${pad(whole % 60)}` : `${minutes}:${pad(whole % 60)}`;
}

function once(target, event) {
  return new Promise((resolve) => target.addEventListener(event, resolve, { once: true }));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Player {
  constructor(root) {
    this.root = root;
    this.video = root.querySelector("video");
    this.playButton = root.querySelector("[data-lucid-play]");
    this.timeBar = root.querySelector("[data-lucid-time-bar]");
    this.clock = root.querySelector("[data-lucid-clock]");
    this.liveBadge = root.querySelector("[data-lucid-live]");
    this.status = root.querySelector("[data-lucid-status]");
    this.urls = {
      timeline: root.dataset.timelineUrl,
      playlist: root.dataset.playlistUrl,
      recording: root.dataset.recordingUrl,
    };
    this.live = root.dataset.live === "true";
    this.ended = !this.live;
    this.fragments = [];
    this.codec = null;
    this.mediaSource = null;
    this.sourceBuffer = null;
    this.filling = false;
    this.fillAgain = false;
    this.download = null;
    this.dragging = false;
    this.failed = false;
  }

  async start() {
    this.bindControls();
    if (!window.MediaSource) {
      this.fail(new Error("this browser has no Media Source Extensions"));
      return;
    }
    try {
      if (this.live) {
        this.liveBadge.hidden = false;
        await this.follow();
      } else {
        await this.adopt(await timelineLayout(this.urls.timeline));
      }
    } catch (error) {
      this.fail(error);
    }
  }

  bindControls() {
    this.playButton.addEventListener("click", () => this.toggle());
    this.timeBar.addEventListener("input", () => {
      this.dragging = true;
      this.showTime(Number(this.timeBar.value));
    });
    this.timeBar.addEventListener("change", () => {
      this.dragging = false;
      this.seek(Number(this.timeBar.value));
    });
    this.video.addEventListener("timeupdate", () => {
      this.showTime(this.video.currentTime);
      this.fill();
    });
    this.video.addEventListener("seeking", () => {
      this.download?.abort();
      this.showTime(this.video.currentTime);
      this.fill();
    });
    this.video.addEventListener("play", () => this.showPlaying());
    this.video.addEventListener("pause", () => this.showPlaying());
    this.video.addEventListener("error", () => {
      this.fail(new Error(this.video.error?.message || "the video cannot be decoded"));
    });
  }

  /** The playlist, every LIVE_POLL_MS, until it ends. */
  async follow() {
    this.say("Waiting for the recording's first fragment…");
    while (!this.ended && !this.failed) {
      try {
        const response = await fetchOk(this.urls.playlist);
        await this.adopt(playlistLayout(await response.text()));
        if (this.sourceBuffer) this.say("");
      } catch (error) {
        this.say(`Following the recording: ${error.message}; trying again.`);
      }
      if (!this.ended && !this.failed) await sleep(LIVE_POLL_MS);
    }
    this.liveBadge.hidden = true;
  }

  /** Take on a newer layout: its new fragments, whether it ended, the media once it can. */
  async adopt(layout) {
    this.fragments.push(...layout.fragments.slice(this.fragments.length));
    this.ended = layout.ended;
    if (!this.sourceBuffer && layout.initSize && this.fragments.length) {
      await this.openMedia(layout.initSize);
      if (this.live && !this.ended) this.seek(this.liveEdge());
    }
    if (!this.sourceBuffer && this.ended) {
      this.say("Nothing to play: the recording has no time marks. Download it instead.");
    }
    this.showTime(this.video.currentTime);
    this.fill();
  }

  async openMedia(initSize) {
    const init = await fetchBytes(this.urls.recording, 0, initSize);
    this.codec = avcCodec(init) ?? FALLBACK_CODEC;
    const type = `video/mp4; codecs="${this.codec}"`;
    if (!MediaSource.isTypeSupported(type)) {
      throw new Error(`this browser cannot play ${type}`);
    }
    this.mediaSource = new MediaSource();
    this.video.src = URL.createObjectURL(this.mediaSource);
    await once(this.mediaSource, "sourceopen");
    const sourceBuffer = this.mediaSource.addSourceBuffer(type);
    await this.append(sourceBuffer, init);
    this.sourceBuffer = sourceBuffer;
    this.syncDuration();
    this.timeBar.disabled = false;
    this.playButton.disabled = false;
    this.root.dataset.state = "ready";
    this.say("");
  }

  toggle() {
    if (this.video.paused) {
      this.video.play().catch((error) => this.say(`Cannot play: ${error.message}`));
    } else {
      this.video.pause();
    }
  }

  seek(seconds) {
    this.video.currentTime = Math.max(0, Math.min(seconds, this.total()));
  }

  total() {
    return this.fragments.at(-1)?.end ?? 0;
  }

  liveEdge() {
    return this.fragments[Math.max(0, this.fragments.length - LIVE_EDGE_FRAGMENTS)].start;
  }

  /** The index of the fragment playing at `seconds`: the last one starting at or before it. */
  fragmentAt(seconds) {
    let [low, high] = [0, this.fragments.length - 1];
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (this.fragments[middle].start <= seconds) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  // The SourceBuffer and MediaSource are changed only here, one step at a time.
  fill() {
    if (!this.sourceBuffer || this.failed) return;
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = true;
    this.fillSteps()
      .catch((error) => this.fail(error))
      .finally(() => {
        this.filling = false;
      });
  }

  async fillSteps() {
    do {
      this.fillAgain = false;
      this.syncDuration();
      const position = this.video.currentTime;
      await this.evict(position);
      const batch = this.nextBatch(position);
      if (batch.length) {
        this.fillAgain = (await this.load(batch)) || this.fillAgain;
      } else {
        this.endIfComplete();
      }
    } while (this.fillAgain);
  }

  /** The fragments to fetch next: unbuffered, contiguous, from `position` to the horizon. */
  nextBatch(position) {
    const horizon = position + BUFFER_AHEAD_SECONDS;
    let index = this.fragmentAt(position);
    while (index < this.fragments.length && this.fragments[index].buffered) index += 1;
    const batch = [];
    for (; index < this.fragments.length; index += 1) {
      const fragment = this.fragments[index];
      if (fragment.buffered || fragment.start >= horizon) break;
      if (batch.length && fragment.start - batch[0].start >= FETCH_SECONDS) break;
      batch.push(fragment);
    }
    return batch;
  }

  /** Fetch and append the batch's bytes; false when a seek made it moot. */
  async load(batch) {
    this.download = new AbortController();
    let bytes;
    try {
      bytes = await fetchBytes(
        this.urls.recording,
        batch[0].offset,
        batch.at(-1).endOffset,
        this.download.signal,
      );
    } catch (error) {
      if (error.name === "AbortError") return false;
      throw error;
    } finally {
      this.download = null;
    }
    await this.append(this.sourceBuffer, bytes);
    for (const fragment of batch) fragment.buffered = true;
    return true;
  }

  /** Drop what lies far behind or ahead of `position`, whole fragments at a time. */
  async evict(position) {
    if (!this.fragments.length) return;
    const first = this.fragmentAt(position - BUFFER_BEHIND_SECONDS);
    const last = this.fragmentAt(position + BUFFER_AHEAD_SECONDS + FETCH_SECONDS);
    // Media time may start a little before the first mark or end after the last one.
    const keepFrom = first > 0 ? this.fragments[first].start : -Infinity;
    const keepTo = last < this.fragments.length - 1 ? this.fragments[last].end : Infinity;
    const drops = [];
    const buffered = this.sourceBuffer.buffered;
    for (let index = 0; index < buffered.length; index += 1) {
      const [start, end] = [buffered.start(index), buffered.end(index)];
      if (start < keepFrom) drops.push([start, Math.min(end, keepFrom)]);
      if (end > keepTo) drops.push([Math.max(start, keepTo), end]);
    }
    for (const [start, end] of drops) {
      if (end <= start) continue;
      this.sourceBuffer.remove(start, end);
      await once(this.sourceBuffer, "updateend");
      for (const fragment of this.fragments) {
        if (fragment.start < end && fragment.end > start) fragment.buffered = false;
      }
    }
  }

  async append(sourceBuffer, bytes) {
    sourceBuffer.appendBuffer(bytes);
    await once(sourceBuffer, "updateend");
  }

  /** The MediaSource's duration: the recording's, or open-ended while live. */
  syncDuration() {
    if (this.mediaSource.readyState !== "open") return;
    const buffered = this.sourceBuffer.buffered;
    const bufferedEnd = buffered.length ? buffered.end(buffered.length - 1) : 0;
    if (this.ended) {
      this.mediaSource.clearLiveSeekableRange?.();
      const duration = Math.max(this.total(), bufferedEnd);
      if (this.mediaSource.duration !== duration) this.mediaSource.duration = duration;
    } else {
      if (this.mediaSource.duration !== Infinity) this.mediaSource.duration = Infinity;
      this.mediaSource.setLiveSeekableRange(0, this.total());
    }
  }

  endIfComplete() {
    const last = this.fragments.at(-1);
    if (this.ended && last?.buffered && this.mediaSource.readyState === "open") {
      this.mediaSource.endOfStream();
    }
  }

  showTime(seconds) {
    const total = this.total();
    this.timeBar.max = String(total);
    if (!this.dragging) this.timeBar.value = String(seconds);
    this.clock.textContent = `${clockText(seconds)} / ${clockText(total)}`;
  }

  showPlaying() {
    this.playButton.textContent = this.video.paused ? "Play" : "Pause";
  }

  say(message) {
    this.status.textContent = message;
  }

  fail(error) {
    this.failed = true;
    this.download?.abort();
    this.root.dataset.state = "failed";
    this.say(`The player stopped: ${error.message}.`);
  }
}

for (const root of document.querySelectorAll("[data-lucid-player]")) {
  root.lucidPlayer = new Player(root);
  root.lucidPlayer.start();
}
