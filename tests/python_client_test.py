#!/usr/bin/env python3
"""End-to-end test of clients/python/homeward_client.py against a real homeward-server.

Starts the server on a free loopback port with a temporary --data-dir and --insecure-dev,
waits for its `listening on` line, then drives the library and the example command line.
No pytest: exits non-zero on the first failure. Needs the generated stubs on PYTHONPATH.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

import grpc

from homeward_client import HomewardClient

CLIENT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                             "python", "homeward_client.py")
START_TIMEOUT_S = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


def start_server(server_bin, tmp):
    address = f"127.0.0.1:{free_port()}"
    log_path = os.path.join(tmp, "server.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([server_bin, "--listen", address, "--data-dir",
                             os.path.join(tmp, "data"), "--insecure-dev"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            if b"listening on" in f.read():
                return proc, address
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    with open(log_path, "rb") as f:
        sys.exit("homeward-server did not start:\n" + f.read().decode(errors="replace"))


def run(address, photo):
    with HomewardClient(address) as hw:
        case = hw.create_case("missing", "Python Ana", sex="f", birth_date="2015-03-02")
        check(case.id != "", f"create_case returns an id ({case.id})")
        added = hw.add_photo(case.id, photo, age="8")
        check(len(added.faces) == 1 and added.faces[0].stored, "add_photo stores one face")

        sighting = hw.submit_sighting(photo, seen_on="2024-01-15", age="8-10", top_k=5)
        ids = [c.case.id for r in sighting.results for c in r.candidates]
        check(case.id in ids, "the sighting lists the missing case")
        best = sighting.results[0]
        check(best.credible_match and best.candidates[0].above_lead_threshold
              and best.candidates[0].age_consistent and not best.message,
              "the same photo is a credible match, above the lead threshold")
        check(abs(best.lead_threshold - 0.5) < 1e-6, "the lead threshold is the server's 0.5")

        found = hw.search(photo, kinds=["missing"], top_k=5)
        check(case.id in [c.case.id for r in found.results for c in r.candidates],
              "search lists the missing case")

        # Born 2015-03-02, the case's child cannot be 3 in 2024: left out and counted, or
        # returned marked when asked for.
        young = hw.search(photo, kinds=["missing"], top_k=5, age="3", query_date="2024-01-15")
        check(case.id not in [c.case.id for r in young.results for c in r.candidates],
              "an age-inconsistent case is left out")
        check(any(left.reason == "TOO_OLD" and left.count >= 1
                  for r in young.results for left in r.age_left_out),
              "age_left_out counts it as TOO_OLD")
        check(not young.results[0].credible_match and young.results[0].message,
              "no credible match comes with a message")
        marked = hw.search(photo, kinds=["missing"], top_k=5, age="3", query_date="2024-01-15",
                           include_age_inconsistent=True)
        shown = [c for r in marked.results for c in r.candidates if c.case.id == case.id]
        check(shown and not shown[0].age_consistent
              and "AGE_INCONSISTENT" in [v.code for v in shown[0].caveats],
              "include_age_inconsistent returns it with an AGE_INCONSISTENT caveat")
        check(shown[0].projected_age.known and 8 <= shown[0].projected_age.min_years < 9.5,
              "its projected age at the query date is about 8-9 "
              f"({shown[0].projected_age.min_years:.1f}-{shown[0].projected_age.max_years:.1f})")

        stats = hw.stats()
        missing = [k.cases for k in stats.kinds if k.kind == 1]
        check(missing and missing[0] >= 1, "stats count the missing case")

        check(any(c.id == case.id for c in hw.list_cases("missing")), "list_cases has it")
        archive_path = os.path.join(tempfile.gettempdir(), f"hw_py_export_{os.getpid()}.tar")
        exported = hw.export_case(case.id, archive_path)
        with tarfile.open(archive_path) as tar:
            doc = json.load(tar.extractfile("case.json"))
            names = tar.getnames()
            photo_bytes = tar.extractfile(doc["photos"][0]["file"]).read()
        os.remove(archive_path)
        with open(photo, "rb") as f:
            original = f.read()
        check(exported.photos == 1 and doc["case"]["id"] == case.id
              and doc["case"]["display_name"] == "Python Ana" and len(names) == 2
              and photo_bytes == original,
              "export_case writes a tar with case.json and the photo, byte-identical")
        hw.delete_case(case.id)
        try:
            hw.get_case(case.id)
            check(False, "get_case after delete fails")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, "get_case after delete is NOT_FOUND")

    # The example command line.
    out = subprocess.run([sys.executable, CLIENT_SCRIPT, "--server", address, "--json",
                          "search", photo, "--kind", "sighting"],
                         capture_output=True, text=True, timeout=180)
    check(out.returncode == 0, f"example search exits 0 ({out.stderr.strip()})")
    reply = json.loads(out.stdout)
    check(len(reply["results"]) == 1 and reply["results"][0]["candidates"],
          "example search finds the sighting")
    # The sighting's child (about 8-10 in 2024) cannot be 3 then: shown only on request.
    age_args = ["search", photo, "--kind", "sighting", "--age", "3", "--seen-at", "2024-01-15"]
    out = subprocess.run([sys.executable, CLIENT_SCRIPT, "--server", address] + age_args,
                         capture_output=True, text=True, timeout=180)
    check(out.returncode == 0 and "left out (TOO_OLD)" in out.stdout
          and "AGE INCONSISTENT" not in out.stdout,
          f"example search leaves the sighting out for its age ({out.stdout.strip()})")
    out = subprocess.run([sys.executable, CLIENT_SCRIPT, "--server", address] + age_args +
                         ["--include-age-inconsistent"], capture_output=True, text=True,
                         timeout=180)
    check(out.returncode == 0 and "AGE INCONSISTENT" in out.stdout,
          f"--include-age-inconsistent shows it marked ({out.stdout.strip()})")
    out = subprocess.run([sys.executable, CLIENT_SCRIPT, "--server", address, "stats"],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and "kinds" in json.loads(out.stdout), "example stats")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server-bin", required=True)
    p.add_argument("--photo", required=True, help="a photo with exactly one face")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="homeward_py_test.") as tmp:
        proc, address = start_server(args.server_bin, tmp)
        try:
            run(address, args.photo)
        except AssertionError as e:
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print("python_client_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
