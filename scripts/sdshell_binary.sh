# Sourced by the CI checks: sets BIN to the sdshell binary they drive, the one given as the
# script's first argument, or else a debug build (built here when missing or stale).
#   source scripts/sdshell_binary.sh "${1:-}"
BIN="${1:-}"
if [ -z "$BIN" ]; then
  swift build --product sdshell >/dev/null
  BIN="$(swift build --show-bin-path)/sdshell"
fi
BIN="$(realpath "$BIN")"
