#!/usr/bin/env bash
# Ansible's openstack.cloud collection (pinned by scripts/lib.sh) against a
# cloud with the fake hypervisor and dataplane: tests/ansible/cloud.yml
# makes a key pair, flavor, image, networks, router, security group and two
# servers with floating IPs; its second run must report changed=0 and
# failed=0, as a re-run playbook does against OpenStack.
. "$(dirname "$0")/lib.bash"
trap ferro_stop EXIT
[ -n "${FERRO_ANSIBLE_VENV:-}" ] || { echo "FERRO_ANSIBLE_VENV is not set (scripts/test makes it)" >&2; exit 1; }

state="$FERRO_WORK/cli-ansible"
scratch="$FERRO_WORK/ansible-files"
rm -rf "$state" "$scratch"
mkdir -p "$scratch"
img=${FERRO_TINY_IMAGE:-}
if [ -z "$img" ]; then
    img="$scratch/small.qcow2"
    qemu-img create -q -f qcow2 "$img" 64M
fi
ssh-keygen -q -t ed25519 -N '' -f "$scratch/id_test"
ferro_start "$state" --hypervisor fake || exit 1
. "$state/openrc"

printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$FERRO_ANSIBLE_VENV/bin/python" >"$scratch/inventory"
play() {
    OS_CLIENT_CONFIG_FILE="$state/clouds.yaml" ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=0 \
        ANSIBLE_LOCAL_TEMP="$scratch/tmp" ANSIBLE_HOME="$scratch/home" \
        "$FERRO_ANSIBLE_VENV/bin/ansible-playbook" -v -i "$scratch/inventory" \
        -e "public_key_file=$scratch/id_test.pub" -e "image_file=$img" \
        "$(dirname "$0")/../ansible/cloud.yml" >"$scratch/run$1.log" 2>&1
}
check "first run succeeds" play 1
check "first run changed things and failed none" bash -c \
    "grep -E '^localhost +:' '$scratch/run1.log' | grep -q 'failed=0' && ! grep -E '^localhost +:' '$scratch/run1.log' | grep -q ' changed=0 '"
check "second run succeeds" play 2
check "second run: changed=0 failed=0" bash -c "grep -E '^localhost +:' '$scratch/run2.log' | grep -E ' changed=0 .* failed=0 '"
for n in 1 2; do
    if ! grep -qE '^localhost +:.* failed=0 ' "$scratch/run$n.log" 2>/dev/null || { [ "$n" = 2 ] && ! grep -qE '^localhost +:.* changed=0 ' "$scratch/run$n.log"; }; then
        log "run $n, changed or failed tasks:"
        grep -E '^(TASK|changed|fatal)' "$scratch/run$n.log" | grep -B1 -E '^(changed|fatal)' | sed 's/^/       /' >&2
        grep -A3 '^fatal' "$scratch/run$n.log" | head -20 | sed 's/^/       /' >&2
    fi
done
check_eq "app1 has a floating IP" "2" "$(openstack server show app1 -f json -c addresses | grep -o '"[0-9.]*"' | wc -l)"
check_eq "app2 has a floating IP" "2" "$(openstack server show app2 -f json -c addresses | grep -o '"[0-9.]*"' | wc -l)"
check "servers are ACTIVE" bash -c "[ \"\$(openstack server list -f value -c Status | sort -u)\" = ACTIVE ]"
finish
