#!/usr/bin/env bash
# The dashboard in headless Chromium (Debian's), driven by playwright-core,
# against a whole cloud with real QEMU and the real dataplane inside a
# sandbox network namespace this script makes and removes (br-ex at
# 172.16.0.1/20, as on the seed's main node). The browser part is
# dashboard.mjs; afterwards the instance it launched is reached from the
# sandbox host through the floating IP it associated, with the key pair it
# imported. Screenshots go to $FERRO_SHOTS (default target/dashboard-screenshots).
. "$(dirname "$0")/../cli/lib.bash"
here=$(cd "$(dirname "$0")" && pwd)
state="$FERRO_WORK/browser-dashboard"
scratch="$FERRO_WORK/browser-files"
shots=${FERRO_SHOTS:-$here/../../target/dashboard-screenshots}
box="fsdash-$$"
mkdir -p "$scratch" "$shots"
for v in FERRO_TINY_IMAGE PLAYWRIGHT_CORE; do
    [ -n "${!v:-}" ] || { echo "$v is not set (scripts/test sets it)" >&2; exit 1; }
done

cleanup() {
    ferro_stop
    ferro_kill_vms "$state"
    ferro_cleanup_dataplane "$state"
    ip netns del "$box" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$box" && ip -n "$box" link set lo up || exit 1
in_box() { ip netns exec "$box" "$@"; }
export FERRO_WRAP="nsenter --net=/run/netns/$box"
ferro_start "$state" --external-cidr 172.16.0.1/20 || exit 1
. "$state/openrc"
dash_url=$(sed -n 's/^# dashboard: \([^ ]*\).*/\1/p' "$state/openrc")
check "openrc names the dashboard" test -n "$dash_url"
check "the dashboard serves its page" bash -c "ip netns exec $box curl -sf '$dash_url' | grep -q '/static/js/app.js'"

ssh-keygen -q -t ed25519 -N '' -f "$scratch/id_ed25519"
CHECKS=$((CHECKS + 1))
if in_box env DASH_URL="$dash_url" ADMIN_PASSWORD="$OS_PASSWORD" IMAGE_FILE="$FERRO_TINY_IMAGE" \
    PUBLIC_KEY_FILE="$scratch/id_ed25519.pub" SHOTS="$shots" PLAYWRIGHT_CORE="$PLAYWRIGHT_CORE" \
    HOME="$scratch" node "$here/dashboard.mjs"; then
    log "ok   the dashboard in Chromium (screenshots in $shots)"
else
    FAILS=$((FAILS + 1))
    log "FAIL the dashboard in Chromium (see $shots/failure.png)"
    finish
    exit 1
fi

# What the browser made is real: the CLI sees it and the instance answers.
os() { in_box openstack "$@"; }
fip=$(os floating ip list -f value -c "Floating IP Address" 2>/dev/null | head -n1)
check "the CLI sees client ACTIVE with the floating IP" bash -c \
    "ip netns exec $box openstack server list -f value -c Name -c Status -c Networks | grep -q '^client ACTIVE .*$fip'"
pings() { in_box ping -c 1 -W 1 "$1"; }
wait_for "ping the floating IP set up in the browser" 120 pings "$fip"
ssh_opts=(-i "$scratch/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=4 -o LogLevel=ERROR -o BatchMode=yes)
on_vm() { in_box ssh "${ssh_opts[@]}" "cloud@$fip" "$@"; }
wait_for "SSH with the key pair imported in the browser" 60 on_vm true
check_eq "ssh … hostname prints client" "client" "$(on_vm hostname 2>&1)"
finish
