#!/usr/bin/env bash
# The container image: `make image` builds it without a container engine; the
# archive loads into podman, runs as a non-root user, and its topowire-init
# resolves the zone from the loopback API server and writes the rack files
# into a mounted directory.
# tw-variants: plain
source "$(dirname "$0")/../lib.sh"
source "$TW_ROOT/tests/standin.sh"
PODMAN=(podman --storage-driver vfs --cgroup-manager cgroupfs --runtime runc)
RUN=(run --rm --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
archive=$TW_TMP/image.tar
image=localhost/topowire-test:it

TW_IMAGE=$image TW_IMAGE_ARCHIVE=$archive "$TW_ROOT/mk/image.sh" >"$TW_TMP/image.log" 2>&1
tap $? "make image builds an OCI archive without a container engine"
size=$(stat -c %s "$archive" 2>/dev/null || echo 0)
[ "$size" -gt 0 ] && [ "$size" -le $((15 * 1024 * 1024)) ]
tap $? "the image archive is at most 15 MB ($size bytes)"

"${PODMAN[@]}" load -q -i "$archive" >"$TW_TMP/load.log" 2>&1
tap $? "podman loads the archive"
user=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$image" 2>/dev/null)
expect_eq "the image runs as the non-root user" "65532:65532" "$user"
entry=$("${PODMAN[@]}" image inspect --format '{{json .Config.Entrypoint}}' "$image" 2>/dev/null)
expect_eq "the entrypoint is topowire-init" '["/usr/local/bin/topowire-init"]' "$entry"

version=$("${PODMAN[@]}" "${RUN[@]}" "$image" --version 2>&1)
expect_eq "topowire-init starts in the image (every shared object is there)" "topowire-init $(cat "$TW_ROOT/VERSION")" "$version"
if "${PODMAN[@]}" image inspect "$image" >/dev/null 2>&1 && [ -x "$TW_ROOT/bin/topowire-webhook" ]; then
    "${PODMAN[@]}" "${RUN[@]}" --entrypoint /usr/local/bin/topowire-webhook "$image" version >/dev/null 2>&1
    tap $? "topowire-webhook starts in the image"
fi

start_kube
out=$TW_TMP/out
mkdir -p "$out"
chmod 0777 "$out"
"${PODMAN[@]}" "${RUN[@]}" \
    -e NODE_NAME=ip-10-0-41-17.ec2.internal \
    -e KUBERNETES_SERVICE_HOST=127.0.0.1 -e KUBERNETES_SERVICE_PORT="$KUBE_PORT" \
    -v "$KUBE_TOKEN_FILE:/var/run/secrets/kubernetes.io/serviceaccount/token:ro" \
    -v "$KUBE_CA:/var/run/secrets/kubernetes.io/serviceaccount/ca.crt:ro" \
    -v "$out:/etc/topowire" \
    --read-only \
    "$image" --sources kubernetes --rack zone-id >"$TW_TMP/run.log" 2>&1
rc=$?
expect_eq "topowire-init in the image exits 0" 0 "$rc"
[ $rc -ne 0 ] && sed 's/^/#   /' "$TW_TMP/run.log"
expect_eq "it wrote the rack from the API server into the mounted directory" "client.rack=use1-az4" "$(cat "$out/rack.properties" 2>/dev/null)"
expect_eq "the files belong to the non-root user" 65532 "$(stat -c %u "$out/rack.properties" 2>/dev/null)"
"${PODMAN[@]}" rmi -f "$image" >/dev/null 2>&1
done_testing
