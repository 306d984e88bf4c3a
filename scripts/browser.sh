#!/usr/bin/env bash
# Install what the browser-tag tests need: Debian's chromium (driven headless by
# Playwright, whose Python package comes with the test extras) and ffmpeg (makes the
# test video at test time). Idempotent and quiet when everything is there already.
#
#   bash scripts/browser.sh        # as root, or with sudo available
#
# Playwright never downloads a browser here (`playwright install` is not used): the
# tests launch /usr/bin/chromium through executable_path.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
echo "browser.sh: installing ${missing[*]} from Debian" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
