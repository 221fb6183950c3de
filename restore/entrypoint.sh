#!/bin/sh
# tether restore job: the article's DRY_RUN / OVERWRITE contract on top of `tether reconcile`.
#
#   DRY_RUN=true  (default)  tether reconcile --plan   : show what would be restored, write nothing
#   DRY_RUN=false            tether reconcile --apply  : write it
#   OVERWRITE=true           also replace files changed on the host (tether backs them up first)
#   BRING_UP=true            after the files, run every service's handlers in order (--bring-up);
#                            with DRY_RUN=true the plan only lists them. BRING_UP=false (default)
#                            writes files only (--no-handlers): their services stay pending
#   TARGET_HOME=/home/NAME   the home inventory paths are relative to (default: tether.yaml's)
#   REPO_URL=URL             restore from this git remote (--repo) instead of the mounted folder;
#   REPO_REF=REF             at this tag, branch or commit (--ref; default: the remote's branch)
#
# The config repo is mounted read-only at $REPO_DIR (/repo), or fetched from $REPO_URL; the host's
# / at $HOST_ROOT (/host), the secret store at $SECRETS_FILE (/run/secrets/tether.env). Extra
# arguments go to tether (`--repo URL --ref TAG` among them works like REPO_URL and REPO_REF).
set -eu

fail() {
    echo "tether-restore: $*" >&2
    exit 64 # usage error, as tether's own
}

flag() { # NAME VALUE: true/false, 1/0, yes/no in any case (as tether reads them), set as true/false
    case "$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')" in
        true | 1 | yes) eval "$1=true" ;;
        false | 0 | no) eval "$1=false" ;;
        *) fail "$1 must be true/false, 1/0 or yes/no, got '$2' (run with -e $1=true or -e $1=false)" ;;
    esac
}

# TETHER_DRY_RUN (and so on) win over the article's names
flag DRY_RUN "${TETHER_DRY_RUN:-${DRY_RUN:-true}}"
flag OVERWRITE "${TETHER_OVERWRITE:-${OVERWRITE:-false}}"
flag BRING_UP "${TETHER_BRING_UP:-${BRING_UP:-false}}"
# tether itself reads these too: hand it the one normalized value
export DRY_RUN OVERWRITE
unset TETHER_DRY_RUN TETHER_OVERWRITE

REPO_DIR="${REPO_DIR:-/repo}"
HOST_ROOT="${HOST_ROOT:-/host}"
STATE_DIR="${STATE_DIR:-$HOST_ROOT/var/lib/tether}"
SECRETS_FILE="${SECRETS_FILE:-/run/secrets/tether.env}"
TARGET_HOME="${TARGET_HOME:-}"
REPO_URL="${REPO_URL:-}"
REPO_REF="${REPO_REF:-}"

remote_in_args=false # the caller's own --repo: no folder needed, theirs names the repo
for arg in "$@"; do
    case "$arg" in --repo | --repo=*) remote_in_args=true ;; esac
done
if [ -n "$REPO_URL" ] && [ "$remote_in_args" = true ]; then
    fail "REPO_URL and a --repo argument name two config repos (give only one)"
fi
if [ -n "$REPO_REF" ] && [ -z "$REPO_URL" ]; then
    fail "REPO_REF needs REPO_URL (a mounted folder has no refs; add -e REPO_URL=URL)"
fi
if [ -z "$REPO_URL" ] && [ "$remote_in_args" = false ]; then
    [ -d "$REPO_DIR" ] || fail "$REPO_DIR: no config repo mounted (add -v /path/to/repo:$REPO_DIR:ro, or -e REPO_URL=URL)"
fi
[ -d "$HOST_ROOT" ] || fail "$HOST_ROOT: the host's root is not mounted (add -v /:$HOST_ROOT)"
case "$TARGET_HOME" in
    "" | /*) ;;
    *) fail "TARGET_HOME must be an absolute path, got '$TARGET_HOME' (e.g. /home/anas)" ;;
esac

if [ "$DRY_RUN" = true ]; then mode=--plan; else mode=--apply; fi

# Build tether's argv in front of the caller's extra arguments, each path one word.
count=$#
set -- "$@" reconcile "$mode"
if [ -n "$REPO_URL" ]; then
    set -- "$@" --repo "$REPO_URL"
    [ -z "$REPO_REF" ] || set -- "$@" --ref "$REPO_REF"
elif [ "$remote_in_args" = false ]; then
    set -- "$@" --source "$REPO_DIR"
fi
set -- "$@" --target-root "$HOST_ROOT" --state-dir "$STATE_DIR"
[ -z "$TARGET_HOME" ] || set -- "$@" --target-home "$TARGET_HOME"
[ "$OVERWRITE" = false ] || set -- "$@" --overwrite
if [ "$BRING_UP" = true ]; then set -- "$@" --bring-up; else set -- "$@" --no-handlers; fi
if [ -e "$SECRETS_FILE" ]; then
    set -- "$@" --secrets-file "$SECRETS_FILE"
else
    echo "tether-restore: no secret store at $SECRETS_FILE; files with placeholders stay blocked" >&2
fi
while [ "$count" -gt 0 ]; do # rotate the caller's arguments to the end
    first=$1
    shift
    set -- "$@" "$first"
    count=$((count - 1))
done

if [ -n "$REPO_URL" ]; then
    from="$(printf '%s' "$REPO_URL" | sed 's#://[^/@]*@#://***@#')${REPO_REF:+ at $REPO_REF}"
elif [ "$remote_in_args" = true ]; then from="the --repo argument"; else from="$REPO_DIR"; fi
echo "tether-restore: from $from; home ${TARGET_HOME:-(from tether.yaml)} under $HOST_ROOT;" \
    "dry run: $DRY_RUN; overwrite: $OVERWRITE; bring-up: $BRING_UP" >&2
exec tether "$@"
