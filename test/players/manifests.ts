/**
 * The manifests players load, templated per test run (pure): the origins' URLs and the steering
 * server's are only known once every server listens on its port 0.
 */
import type { Media } from './media.js';

export interface Pathway {
  /** PATHWAY-ID (HLS) / serviceLocation (DASH). */
  id: string;
  /** Base URL of the origin serving this pathway's copy, ending with '/'. */
  baseUrl: string;
}

const attr = (s: string): string => s.replace(/"/g, '%22');
const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

/**
 * HLS multivariant playlist (RFC 8216bis 4.4.6.6): EXT-X-CONTENT-STEERING names the steering server
 * and the initial pathway; every variant and audio rendition is listed once per pathway, with
 * absolute URIs on that pathway's origin.
 */
export function hlsMultivariant(media: Media, pathways: readonly Pathway[], steeringUri: string | undefined): string {
  const first = pathways[0];
  if (!first) throw new Error('at least one pathway');
  const out = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  if (steeringUri !== undefined) out.push(`#EXT-X-CONTENT-STEERING:SERVER-URI="${attr(steeringUri)}",PATHWAY-ID="${first.id}"`);
  for (const p of pathways) {
    out.push(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud-${p.id}",NAME="audio",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="${attr(p.baseUrl + media.audioPlaylist)}"`);
  }
  for (const p of pathways) {
    for (const v of media.variants) {
      const { width, height } = v.rendition;
      out.push(`#EXT-X-STREAM-INF:BANDWIDTH=${v.bandwidth},RESOLUTION=${width}x${height},CODECS="${v.codecs}",AUDIO="aud-${p.id}",PATHWAY-ID="${p.id}"`);
      out.push(p.baseUrl + v.playlist);
    }
  }
  return out.join('\n') + '\n';
}

/**
 * DASH MPD (DASH-IF content steering / ETSI TS 103 998): one MPD-level BaseURL per pathway with
 * @serviceLocation, and <ContentSteering> naming the steering server and the default location.
 */
export function dashMpd(media: Media, pathways: readonly Pathway[], steeringUri: string | undefined): string {
  const first = pathways[0];
  if (!first) throw new Error('at least one pathway');
  const base = pathways.map((p) => `\t<BaseURL serviceLocation="${xml(p.id)}">${xml(p.baseUrl)}</BaseURL>`);
  const steering = steeringUri === undefined ? [] : [
    `\t<ContentSteering defaultServiceLocation="${xml(first.id)}" queryBeforeStart="false">${xml(steeringUri)}</ContentSteering>`,
  ];
  // ffmpeg writes <ProgramInformation> right after the MPD element: BaseURL follows it (schema order).
  const at = media.mpd.indexOf('<ServiceDescription');
  const cut = at >= 0 ? at : media.mpd.indexOf('<Period');
  if (cut < 0) throw new Error('unexpected ffmpeg MPD');
  return `${media.mpd.slice(0, cut)}${[...base, ...steering].join('\n')}\n\t${media.mpd.slice(cut)}`;
}
