#!/usr/bin/python3
"""Phone-sized test photos for the bulk import benchmark (docs/BENCHMARKS.md, "Face detectors").

Each photo is a 1600x1200 (7 in 10) or 1200x1600 JPEG, quality 90: a real face photo from
the shared data (all 508 fgnet-dev images, then one LFW development image per person, sorted,
until COUNT) scaled to 35-65% of the frame's shorter side and placed at a random spot on a
smooth random background with sensor-like noise (no faces in it). Seeded: the same photos on
every run. A manifest (file, source, frame, placement) is written next to the folder.

    /usr/bin/python3 scripts/make_phone_photos.py [--data /work/shared/data] [--out /tmp/hspeed_phone]
        [--count 1000]

The photos are derived from research data (LFW, FG-NET): they stay outside the repository
(the script refuses to write inside it).
"""
import argparse
import csv
import os
import sys

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sources(data, count):
    fg = os.path.join(data, "fgnet-dev", "images")
    out = [os.path.join(fg, f) for f in sorted(os.listdir(fg)) if f.lower().endswith(".jpg")]
    lfw = os.path.join(data, "lfw-view1")
    for person in sorted(os.listdir(lfw)):
        d = os.path.join(lfw, person)
        if len(out) >= count:
            break
        if os.path.isdir(d):
            files = sorted(f for f in os.listdir(d) if f.endswith(".jpg"))
            if files:
                out.append(os.path.join(d, files[0]))
    if len(out) < count:
        sys.exit(f"only {len(out)} source photos under {data}")
    return out[:count]


def background(rng, w, h):
    grid = rng.uniform(30, 225, size=(3, 4, 3)).astype(np.float32)
    if h > w:
        grid = grid.transpose(1, 0, 2).copy()
    bg = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    bg += rng.normal(0, 6, size=bg.shape).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("HOMEWARD_SHARED_DATA", "/work/shared/data"))
    ap.add_argument("--out", default="/tmp/hspeed_phone")
    ap.add_argument("--count", type=int, default=1000)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    if out == REPO or out.startswith(REPO + os.sep):
        sys.exit(f"{out} is inside the repository: write the photos elsewhere (e.g. /tmp)")
    os.makedirs(out, exist_ok=True)
    rows = []
    for i, src in enumerate(sources(a.data, a.count)):
        rng = np.random.default_rng(42 + i)
        w, h = (1600, 1200) if i % 10 < 7 else (1200, 1600)
        frame = background(rng, w, h)
        face = cv2.imread(src, cv2.IMREAD_COLOR)
        if face is None:
            sys.exit(f"cannot read {src}")
        side = rng.uniform(0.35, 0.65) * min(w, h)
        s = side / max(face.shape[:2])
        face = cv2.resize(face, None, fx=s, fy=s,
                          interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        fh, fw = face.shape[:2]
        x = int(rng.integers(0, w - fw + 1))
        y = int(rng.integers(0, h - fh + 1))
        frame[y:y + fh, x:x + fw] = face
        name = f"phone_{i + 1:04d}.jpg"
        cv2.imwrite(os.path.join(out, name), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.append([name, os.path.relpath(src, a.data), f"{w}x{h}", f"{fw}x{fh}+{x}+{y}"])
    manifest = out.rstrip("/") + ".manifest.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["file", "source", "frame", "placed"]] + rows)
    print(f"{len(rows)} photos in {out}; manifest {manifest}")


if __name__ == "__main__":
    main()
