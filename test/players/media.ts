/**
 * Test media for the player tests: one ffmpeg run (testsrc2 + a sine tone) encodes three H.264
 * renditions and one AAC track into CMAF (fMP4) segments of 2 s, with a DASH MPD and HLS media
 * playlists over the same segments. The manifests players load (multivariant playlist with
 * EXT-X-CONTENT-STEERING, MPD with <ContentSteering>) are templated per test by manifests.ts.
 *
 * Cached under .cache/media/<key>/ (gitignored): a second run reuses it. Run alone with
 * `npx tsx test/players/media.ts`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const FFMPEG = process.env.FFMPEG_PATH ?? '/usr/bin/ffmpeg';

export interface Rendition {
  /** DASH Representation id = ffmpeg output stream index; HLS media playlist `media_<id>.m3u8`. */
  id: number;
  width: number;
  height: number;
  videoKbps: number;
}

export interface MediaSpec {
  durationS: number;
  segmentS: number;
  fps: number;
  audioKbps: number;
  renditions: Rendition[];
}

/**
 * Bitrates chosen to fall in three different buckets of BITRATE_BUCKETS_KBPS (processors/accumulator.ts)
 * both as DASH video bandwidth (dash.js reports it) and as HLS BANDWIDTH = video + audio (hls.js reports it):
 * 400 / 464 kbps → [300, 600), 1100 / 1164 → [1000, 1500), 2400 / 2464 → [2000, 3000).
 */
export const DEFAULT_MEDIA: MediaSpec = {
  durationS: 60,
  segmentS: 2,
  fps: 24,
  audioKbps: 64,
  renditions: [
    { id: 0, width: 640, height: 360, videoKbps: 400 },
    { id: 1, width: 960, height: 540, videoKbps: 1100 },
    { id: 2, width: 1280, height: 720, videoKbps: 2400 },
  ],
};

/**
 * For the steering tests: 5 minutes, so a player never reaches the end while the loop runs (with
 * `video.loop` set, hls.js stalled at the end in our runs instead of looping). Two small renditions at 12 fps keep
 * the encode as cheap as DEFAULT_MEDIA's.
 */
export const LONG_MEDIA: MediaSpec = {
  durationS: 300,
  segmentS: 2,
  fps: 12,
  audioKbps: 64,
  renditions: [
    { id: 0, width: 640, height: 360, videoKbps: 400 },
    { id: 1, width: 960, height: 540, videoKbps: 1100 },
  ],
};

export interface Media {
  dir: string;
  spec: MediaSpec;
  /** ffmpeg's MPD (no BaseURL, no steering): the template of the served MPD. */
  mpd: string;
  /** Per rendition: BANDWIDTH and CODECS of ffmpeg's own master playlist. */
  variants: Array<{ rendition: Rendition; bandwidth: number; codecs: string; playlist: string }>;
  audioPlaylist: string;
  /** How long generation took (0 when the cache was used). */
  generatedMs: number;
}

function cacheKey(spec: MediaSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 12);
}

function ffmpegArgs(spec: MediaSpec): string[] {
  const { durationS, fps, renditions } = spec;
  const [first] = renditions;
  if (!first) throw new Error('media spec without renditions');
  const gop = spec.segmentS * fps;
  // testsrc2 is drawn once at the smallest size and scaled up: drawing it at 720p costs more than encoding.
  const split = renditions.map((_, i) => `[s${i}]`).join('');
  const scales = renditions.map((r, i) => `[s${i}]scale=${r.width}:${r.height}[v${i}]`).join(';');
  const rates = renditions.flatMap((r, i) => [`-b:v:${i}`, `${r.videoKbps}k`, `-maxrate:v:${i}`, `${r.videoKbps}k`, `-bufsize:v:${i}`, `${r.videoKbps * 2}k`]);
  return [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${first.width}x${first.height}:rate=${fps}:duration=${durationS}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${durationS}`,
    '-filter_complex', `[0:v]split=${renditions.length}${split};${scales}`,
    ...renditions.flatMap((_, i) => ['-map', `[v${i}]`]), '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    // A key frame on every segment boundary, none elsewhere: segments of exactly segmentS.
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0',
    ...rates,
    '-c:a', 'aac', '-b:a', `${spec.audioKbps}k`, '-ac', '2',
    '-f', 'dash', '-seg_duration', String(spec.segmentS), '-use_template', '1', '-use_timeline', '0',
    '-hls_playlist', '1', '-adaptation_sets', 'id=0,streams=v id=1,streams=a',
    'manifest.mpd',
  ];
}

function parseMaster(master: string, spec: MediaSpec): Pick<Media, 'variants' | 'audioPlaylist'> {
  const lines = master.split(/\r?\n/);
  const audio = /URI="([^"]+)"/.exec(lines.find((l) => l.startsWith('#EXT-X-MEDIA:')) ?? '');
  const variants: Media['variants'] = [];
  lines.forEach((l, i) => {
    if (!l.startsWith('#EXT-X-STREAM-INF:')) return;
    const bandwidth = Number(/BANDWIDTH=(\d+)/.exec(l)?.[1]);
    const codecs = /CODECS="([^"]+)"/.exec(l)?.[1] ?? '';
    const playlist = lines[i + 1]?.trim() ?? '';
    const id = Number(/media_(\d+)\.m3u8/.exec(playlist)?.[1]);
    const rendition = spec.renditions.find((r) => r.id === id);
    if (!rendition || !Number.isFinite(bandwidth)) throw new Error(`unexpected ffmpeg master playlist line: ${l}`);
    variants.push({ rendition, bandwidth, codecs, playlist });
  });
  if (!audio?.[1] || variants.length !== spec.renditions.length) throw new Error('ffmpeg master playlist: audio or variants missing');
  return { variants, audioPlaylist: audio[1] };
}

async function load(dir: string, spec: MediaSpec, generatedMs: number): Promise<Media> {
  const [mpd, master] = await Promise.all([readFile(join(dir, 'manifest.mpd'), 'utf8'), readFile(join(dir, 'master.m3u8'), 'utf8')]);
  return { dir, spec, mpd, ...parseMaster(master, spec), generatedMs };
}

/** The media for `spec`, generated into .cache/media/<key>/ unless already there. */
export async function ensureMedia(spec: MediaSpec = DEFAULT_MEDIA, cacheRoot = join(REPO_ROOT, '.cache/media')): Promise<Media> {
  const dir = join(cacheRoot, cacheKey(spec));
  if (existsSync(join(dir, 'manifest.mpd')) && existsSync(join(dir, 'master.m3u8'))) return load(dir, spec, 0);
  // Written next to its final place and renamed: a concurrent or interrupted run never leaves half a cache.
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  const started = Date.now();
  try {
    await run(FFMPEG, ffmpegArgs(spec), { cwd: tmp, timeout: 180_000 });
    await rename(tmp, dir).catch(async (err: unknown) => {
      // Another process won the race: use its copy.
      if (!existsSync(join(dir, 'manifest.mpd'))) throw err;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`ffmpeg failed to generate the test media (${FFMPEG})`, { cause: err });
  }
  return load(dir, spec, Date.now() - started);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const spec of [DEFAULT_MEDIA, LONG_MEDIA]) {
    const media = await ensureMedia(spec);
    console.log(`${media.dir} (${media.generatedMs === 0 ? 'cached' : `generated in ${media.generatedMs} ms`})`);
  }
}
