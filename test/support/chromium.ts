// Headless Chromium (Debian's `chromium` package; .ci/run installs it when missing) for tests that
// must see a page rendered: a fresh profile per run, nothing fetched from the network.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';

export const CHROMIUM = '/usr/bin/chromium';

const run = promisify(execFile);

async function chromium(args: string[], file: string): Promise<string> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get update && apt-get install -y chromium), as .ci/run does`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'rowguard-chromium-'));
  try {
    const { stdout } = await run(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        ...args,
        pathToFileURL(file).href,
      ],
      { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The DOM after Chromium parsed and laid out the page. */
export function dumpDom(file: string): Promise<string> {
  return chromium(['--dump-dom'], file);
}

export interface Screenshot {
  readonly width: number;
  readonly height: number;
  /** Share of pixels that are not (near) white: 0 for a blank page. */
  readonly inked: number;
}

export async function screenshot(file: string, out: string, width: number, height: number): Promise<Screenshot> {
  await chromium([`--screenshot=${out}`, `--window-size=${width},${height}`], file);
  return inspectPng(readFileSync(out));
}

/** Minimal PNG reading (8-bit RGB/RGBA, as Chromium writes): size and how much is drawn. */
export function inspectPng(png: Buffer): Screenshot {
  if (png.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new Error('not a PNG file');
  let offset = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.subarray(offset + 4, offset + 8).toString('ascii');
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8) throw new Error('only 8-bit PNGs are read');
      colorType = data[9]!;
    } else if (type === 'IDAT') idat.push(data);
    offset += 12 + length;
  }
  const channels = colorType === 6 ? 4 : colorType === 2 ? 3 : 0;
  if (channels === 0) throw new Error(`PNG colour type ${colorType} is not read`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const current = Buffer.alloc(stride);
  const previous = Buffer.alloc(stride);
  let inked = 0;
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? current[i - channels]! : 0;
      const b = previous[i]!;
      const c = i >= channels ? previous[i - channels]! : 0;
      const x = line[i]!;
      let v: number;
      switch (filter) {
        case 0: v = x; break;
        case 1: v = x + a; break;
        case 2: v = x + b; break;
        case 3: v = x + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`bad PNG filter ${filter}`);
      }
      current[i] = v & 0xff;
    }
    for (let px = 0; px < width; px++) {
      const o = px * channels;
      if (current[o]! < 200 || current[o + 1]! < 200 || current[o + 2]! < 200) inked++;
    }
    current.copy(previous);
  }
  return { width, height, inked: inked / (width * height) };
}
