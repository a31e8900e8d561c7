"""The Chromium the browser tests drive: the one inside the npm package @sparticuz/chromium, unpacked on first use.

No system browser, no root and no download outside the package registries: `npm install` brings the package (a
brotli-compressed headless Chromium with the NSS libraries it links against and a font), and this module unpacks
it into `.browser/` with Node's zlib. `make test` runs `python -m tests.e2e.browser` once; the fixture does too
if the folder is missing. CHROMIUM_EXECUTABLE names another Chromium instead (for example Debian's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node_modules" / "@sparticuz" / "chromium"
BROWSER_DIR = ROOT / ".browser"
EXECUTABLE = BROWSER_DIR / "chromium"
LIBRARIES = BROWSER_DIR / "lib"
FONTS_CONF = BROWSER_DIR / "fonts.conf"
STAMP = BROWSER_DIR / "version"
# Node's zlib streams the brotli data: Python's standard library has no brotli decoder.
BROTLI = "process.stdin.pipe(require('zlib').createBrotliDecompress()).pipe(process.stdout)"
HOW_TO_GET_IT = ("run `make test` (it runs `npm install`, which brings @sparticuz/chromium from the npm registry), "
                 "or set CHROMIUM_EXECUTABLE to a Chromium of your own")


class BrowserMissing(RuntimeError):
    """Chromium cannot be found or unpacked; the message says how to get it."""


def package_version() -> str:
    try:
        return json.loads((PACKAGE / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError) as error:
        raise BrowserMissing(f"@sparticuz/chromium is not installed: {HOW_TO_GET_IT}") from error


def _inflate(source: Path, target: Path) -> None:
    """Decompress one .br file of the package into `target` (a file)."""
    node = shutil.which("node")
    if node is None:
        raise BrowserMissing("Node.js 20 is needed to unpack Chromium (https://nodejs.org, or your package manager)")
    with source.open("rb") as stdin, target.open("wb") as stdout:
        subprocess.run([node, "-e", BROTLI], stdin=stdin, stdout=stdout, check=True, timeout=300)


def _untar(source: Path, into: Path) -> None:
    packed = into / (source.name + ".tar")
    _inflate(source, packed)
    with tarfile.open(packed) as archive:
        archive.extractall(into, filter="data")
    packed.unlink()


def unpack() -> Path:
    """Unpack the package's Chromium into .browser/ unless this version already is; returns the executable."""
    version = package_version()
    if EXECUTABLE.exists() and STAMP.exists() and STAMP.read_text() == version:
        return EXECUTABLE
    shutil.rmtree(BROWSER_DIR, ignore_errors=True)
    staging = BROWSER_DIR.with_name(".browser.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    binaries = PACKAGE / "bin"
    _inflate(binaries / "chromium.br", staging / "chromium")
    (staging / "chromium").chmod(0o755)
    _untar(binaries / "al2023.tar.br", staging)  # lib/: libnss3 and friends, so no system NSS is needed
    _untar(binaries / "fonts.tar.br", staging)  # fonts/fonts/Open_Sans, for machines without any font
    # The package's own fonts.conf points at /tmp/fonts (AWS Lambda); this one keeps the system's fonts too.
    (staging / FONTS_CONF.name).write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{BROWSER_DIR / 'fonts' / 'fonts'}</dir>\n"
        f"  <cachedir>{BROWSER_DIR / 'fonts-cache'}</cachedir>\n</fontconfig>\n")
    (staging / STAMP.name).write_text(version)
    staging.rename(BROWSER_DIR)
    return EXECUTABLE


def launch_options() -> dict:
    """executable_path and env for Playwright's chromium.launch."""
    configured = os.environ.get("CHROMIUM_EXECUTABLE")
    if configured:
        if not Path(configured).exists():
            raise BrowserMissing(f"CHROMIUM_EXECUTABLE={configured} does not exist: {HOW_TO_GET_IT}")
        return {"executable_path": configured}
    try:
        executable = unpack()
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as error:
        raise BrowserMissing(f"Chromium could not be unpacked ({error}): {HOW_TO_GET_IT}") from error
    libraries = os.pathsep.join(filter(None, [str(LIBRARIES), os.environ.get("LD_LIBRARY_PATH")]))
    return {"executable_path": str(executable),
            "env": {**os.environ, "LD_LIBRARY_PATH": libraries, "FONTCONFIG_FILE": str(FONTS_CONF)}}


if __name__ == "__main__":
    try:
        print(f"Chromium for the browser tests: {unpack().relative_to(ROOT)} (@sparticuz/chromium {package_version()})")
    except BrowserMissing as missing:
        raise SystemExit(str(missing)) from None
