#!/usr/bin/python3
"""Bulk `homeward import` of a photo folder into two real servers, one per face detector.

Starts two homeward-server processes (--insecure-dev on loopback, a fresh temp --data-dir
each, default workers and age model), --detector hog and --detector cnn. The folder is cut
into CHUNKS slices (symlinks in a temp dir); the slices go to the two servers in turn,
alternating which detector goes first, so both see the same machine load. Each slice is one
`homeward --json import SLICE --kind missing` run; the table sums their photos sent, seconds,
faces found and photos without a face, and the servers' CPU time (/proc/PID/stat).

    /usr/bin/python3 scripts/make_phone_photos.py            # /tmp/hspeed_phone, 1,000 photos
    /usr/bin/python3 scripts/import_detectors_bench.py [--photos /tmp/hspeed_phone] [--chunks 10]
        [--build build]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(build, detector, tmp):
    data = os.path.join(tmp, f"data_{detector}")
    log = os.path.join(tmp, f"server_{detector}.log")
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [os.path.join(build, "server/homeward-server"), "--listen", address, "--data-dir", data,
         "--insecure-dev", "--detector", detector],
        stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if "listening on" in open(log).read():
            return proc, address, log
        if proc.poll() is not None:
            sys.exit(f"homeward-server --detector {detector} exited:\n" + open(log).read())
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"homeward-server --detector {detector} did not start:\n" + open(log).read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", default="/tmp/hspeed_phone")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    a = ap.parse_args()
    files = sorted(f for f in os.listdir(a.photos) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    tmp = tempfile.mkdtemp(prefix="hspeed_import_")
    servers = {d: start_server(a.build, d, tmp) for d in ("hog", "cnn")}
    total = {d: {"sent": 0, "refused": 0, "faces": 0, "without": 0, "seconds": 0.0, "cpu": 0.0, "failed": 0,
                 "chunks": []} for d in servers}
    try:
        per = (len(files) + a.chunks - 1) // a.chunks
        for c in range(a.chunks):
            part = files[c * per:(c + 1) * per]
            if not part:
                break
            order = ("hog", "cnn") if c % 2 == 0 else ("cnn", "hog")
            for d in order:
                folder = os.path.join(tmp, f"chunk{c:02d}_{d}")
                os.makedirs(folder)
                for f in part:
                    os.symlink(os.path.join(os.path.abspath(a.photos), f), os.path.join(folder, f))
                proc, address, _ = servers[d]
                cpu0 = cpu_seconds(proc.pid)
                r = subprocess.run(
                    [os.path.join(a.build, "clients/homeward"), "--json", "--server", address,
                     "import", folder, "--kind", "missing", "--no-progress",
                     "--state", folder + ".state.jsonl"],
                    capture_output=True, text=True)
                cpu = cpu_seconds(proc.pid) - cpu0
                try:
                    s = json.loads(r.stdout)
                except json.JSONDecodeError:
                    sys.exit(f"import into {d} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
                t = total[d]
                t["sent"] += s["photosSent"]
                t["refused"] += s.get("photosRefused", 0)
                t["faces"] += s["facesFound"]
                t["without"] += s["photosWithoutFace"]
                t["seconds"] += s["seconds"]
                t["cpu"] += cpu
                t["failed"] += s["failed"]
                t["chunks"].append(s["photosSent"] / s["seconds"] if s["seconds"] else 0)
                print(f"chunk {c + 1}/{a.chunks} {d}: {s['photosSent']} photos in {s['seconds']:.1f} s "
                      f"({t['chunks'][-1]:.2f}/s), {s['facesFound']} faces, "
                      f"{s['photosWithoutFace']} without a face, {s.get('photosRefused', 0)} refused, "
                      f"server CPU {cpu:.1f} s",
                      file=sys.stderr, flush=True)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait()
    print(f"\n{len(files)} photos from {a.photos}, {a.chunks} slices alternating between the servers\n")
    print("| detector | photos sent | seconds | photos/s | per slice (min-max) | faces found | "
          "photos without a face | refused (several faces, none chosen) | rows failed | "
          "server CPU s per photo |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for d, t in total.items():
        print(f"| {d} | {t['sent']} | {t['seconds']:.1f} | **{t['sent'] / t['seconds']:.2f}** | "
              f"{min(t['chunks']):.2f}-{max(t['chunks']):.2f} | {t['faces']} | {t['without']} | "
              f"{t['refused']} | {t['failed']} | {t['cpu'] / max(1, t['sent']):.3f} |")
    rate = {d: t["sent"] / t["seconds"] for d, t in total.items()}
    print(f"\ncnn / hog photos/s: {rate['cnn'] / rate['hog']:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
