#!/usr/bin/env bash
# Acceptance of the image service through the unmodified openstack CLI: the
# seed's `image create`, a byte-identical `image save`, metadata edits, and
# refused uploads (a qcow2 with a backing file, garbage declared as qcow2).
. "$(dirname "$0")/lib.bash"
trap ferro_stop EXIT

state="$FERRO_WORK/cli-image"
scratch="$FERRO_WORK/image-files"
mkdir -p "$scratch"
img=${FERRO_TINY_IMAGE:-}
if [ -z "$img" ]; then
    img="$scratch/small.qcow2"
    qemu-img create -q -f qcow2 "$img" 64M
fi
ferro_start "$state" || exit 1
. "$state/openrc"

check "image create --public (the seed's command)" \
    openstack image create --public --container-format bare --disk-format qcow2 --file "$img" tiny
check_eq "image is active" "active" "$(openstack image show tiny -f value -c status 2>&1)"
check_eq "size matches the file" "$(stat -c %s "$img")" "$(openstack image show tiny -f value -c size 2>&1)"
want_sha=$(sha512sum "$img" | cut -d' ' -f1)
check "os_hash_value is the sha512 of the file" bash -c "openstack image show tiny -f json | grep -q '$want_sha'"
check_eq "checksum is the md5 of the file" "$(md5sum "$img" | cut -d' ' -f1)" "$(openstack image show tiny -f value -c checksum 2>&1)"
check "image save" openstack image save --file "$scratch/back.qcow2" tiny
check "image save returns identical bytes" cmp "$img" "$scratch/back.qcow2"
check "image set name, property and tag" openstack image set --name tiny-renamed --property os_distro=tiny --tag ci tiny
check "the edits show" bash -c "openstack image show tiny-renamed -f json | grep -q '\"os_distro\": \"tiny\"' && openstack image show tiny-renamed -f value -c tags | grep -q ci"
check "image set back" openstack image set --name tiny tiny-renamed

qemu-img create -q -f qcow2 -b /etc/passwd -F raw "$scratch/evil.qcow2" 1M
check_fails "a qcow2 with a backing file is refused" "400" \
    openstack image create --container-format bare --disk-format qcow2 --file "$scratch/evil.qcow2" evil
head -c 200000 /dev/urandom >"$scratch/garbage.img"
check_fails "garbage declared as qcow2 is refused" "400" \
    openstack image create --container-format bare --disk-format qcow2 --file "$scratch/garbage.img" garbage
check_eq "nothing but tiny is listed" "tiny" "$(openstack image list -f value -c Name 2>&1)"
check "protected images can't be deleted" openstack image set --protected tiny
check_fails "delete of a protected image" "403" openstack image delete tiny
check "unprotect and delete" bash -c "openstack image set --unprotected tiny && openstack image delete tiny"
check_eq "no images left" "" "$(openstack image list -f value -c Name 2>&1)"
check_eq "no image files left" "0" "$(find "$state/images" -type f | wc -l)"
finish
