"""The GPU check's wheels on the GPU machine: check the pieces carried so far (``receive``), or
reassemble them, check the tar and every wheel against the manifest (sha256) and install the
wheels into ``<bundle>/site`` (``install``), with ``pip install --no-index --no-deps --target``
(or a plain unzip where that Python has no pip). bench/gpu_prepare.sh makes the pieces and
bench/gpu_check.sh calls this; see docs/benchmarks.md.

    python3 bench/gpu_wheels.py receive [--bundle bundle/gpu]
    python3 bench/gpu_wheels.py install [--bundle bundle/gpu]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


class Joined(io.RawIOBase):
    """The pieces read as one stream, hashed as it is read."""

    def __init__(self, paths):
        self.files = [open(p, "rb") for p in paths]
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.files:
            n = self.files[0].readinto(buffer)
            if n:
                self.hash.update(memoryview(buffer)[:n])
                return n
            self.files.pop(0).close()
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["receive", "install"])
    parser.add_argument("--bundle", default="bundle/gpu")
    args = parser.parse_args()
    mode, bundle = args.mode, pathlib.Path(args.bundle)
    site = bundle / "site"
    manifests = sorted(bundle.glob("part*/manifest.json"))
    if not manifests:
        print(f"gpu_check: no pieces under {bundle}/part*/ - carry them (bench/gpu_prepare.sh makes them)")
        return 3
    manifest = json.loads(manifests[0].read_text())
    stamp = site / ".installed"
    if mode == "install" and stamp.exists() and stamp.read_text().strip() == manifest["tar"]["sha256"]:
        print(f"gpu_check: wheels already installed in {site}")
        return 0

    missing, bad = [], []
    for p in manifest["pieces"]:
        path = bundle / p["part"] / p["name"]
        if not path.exists():
            missing.append(p["part"])
        elif path.stat().st_size != p["bytes"] or sha256(path) != p["sha256"]:
            bad.append(p["part"])
        else:
            print(f"gpu_check: {path} ok ({p['bytes'] / 2**20:.1f} MiB)")
    if bad:
        print(f"gpu_check: pieces damaged in {bad}: carry those parts again")
        return 3
    if missing:
        print(f"gpu_check: still missing {missing}: carry them in the next calls, one part a call")
        return 0 if mode == "receive" else 3
    if mode == "receive":
        print("gpu_check: all pieces here; next: bench/gpu_check.sh run")
        return 0

    # Reassemble into one stream, hash it while unpacking, then check each wheel.
    unpacked = bundle / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    stream = Joined([bundle / p["part"] / p["name"] for p in manifest["pieces"]])
    with tarfile.open(fileobj=io.BufferedReader(stream, 1 << 22), mode="r|") as tar:
        tar.extractall(unpacked, filter="data")
    while stream.readinto(bytearray(1 << 20)):          # the tar's end padding, hashed too
        pass
    if stream.hash.hexdigest() != manifest["tar"]["sha256"]:
        print("gpu_check: the reassembled tar does not match the manifest")
        return 3
    wheels = []
    for w in manifest["wheels"]:
        path = unpacked / "wheels" / w["name"]
        if not path.exists() or sha256(path) != w["sha256"]:
            print(f"gpu_check: wheel {w['name']} damaged after reassembly")
            return 3
        wheels.append(str(path))
    print(f"gpu_check: reassembled {len(manifest['pieces'])} pieces; the tar and {len(wheels)} wheels check out")

    shutil.rmtree(site, ignore_errors=True)
    has_pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if has_pip:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(site), *wheels], check=True)
    else:                                               # a wheel is a zip of its site-packages files
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as z:
                z.extractall(site)
            for data in site.glob("*.data"):
                for kind in ("purelib", "platlib"):
                    if (data / kind).exists():
                        shutil.copytree(data / kind, site, dirs_exist_ok=True)
                shutil.rmtree(data)
        for so in site.rglob("*.so*"):
            so.chmod(0o755)
    shutil.rmtree(unpacked)
    stamp.write_text(manifest["tar"]["sha256"] + "\n")
    print(f"gpu_check: installed {[w['name'] for w in manifest['wheels']]} into {site} "
          f"({'pip --no-index' if has_pip else 'unzip'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
