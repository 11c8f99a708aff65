#!/usr/bin/env bash
# The end-to-end tests drive Debian's Chromium and run a real Dovecot IMAP server.
# Installs them when missing and we can (root with apt-get); otherwise says what is missing,
# and those tests skip with that reason (or fail under REQUIRE_SERVICES=1).
set -u
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-imapd)
# Customers write emoji: screenshots of the inbox need a font that draws them.
fc-list 2>/dev/null | grep -qi "color emoji" || missing+=(fonts-noto-color-emoji)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the end-to-end tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } \
    || echo "warning: could not install ${missing[*]}; browser/IMAP tests will skip"
else
  echo "note: ${missing[*]} not installed (needs root and apt-get); browser/IMAP tests will skip"
fi
exit 0
