#!/usr/bin/env bash
# The container image: `make image` builds one OCI image index for linux/amd64 and linux/arm64
# without a container engine. Per platform, from the archive's own layer: the programs run
# (arm64 under qemu-aarch64-static -L ROOTFS, amd64 through the image's own loader):
# topowire-init resolves the zone from the loopback API server and writes the rack files,
# topowire-webhook serve answers an AdmissionReview; every shipped shared object's package has
# its copyright file and dpkg status entry, and the SPDX SBOM lists it with the same version.
# A second build from a copy of the tree at another path gives a byte-identical archive. The
# index goes through a real registry on loopback (docker-registry, skopeo) and comes back with
# the same digests, and podman pulls it from there and runs the amd64 image as a non-root user.
# tw-variants: plain
source "$(dirname "$0")/../lib.sh"
source "$TW_ROOT/tests/standin.sh"
PODMAN=(podman --storage-driver vfs --cgroup-manager cgroupfs --runtime runc)
RUN=(run --rm --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
archive=$TW_TMP/image.tar
name=localhost/topowire-test:it
version=$(cat "$TW_ROOT/VERSION")
FIX=$TW_FIXTURES/admission
NODE=ip-10-0-41-17.ec2.internal
QEMU=${TW_QEMU_AARCH64:-qemu-aarch64-static}

skip() { tap 0 "$1 # SKIP $2"; }

# The same SOURCE_DATE_EPOCH and commit for both builds (a tarball without .git gets fixed ones).
export SOURCE_DATE_EPOCH TW_COMMIT
SOURCE_DATE_EPOCH=$(git -C "$TW_ROOT" log -1 --format=%ct 2>/dev/null || echo 1700000000)
TW_COMMIT=$(git -C "$TW_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)

start=$(date +%s)
TW_IMAGE=$name TW_IMAGE_ARCHIVE=$archive "$TW_ROOT/mk/image.sh" >"$TW_TMP/image.log" 2>&1
rc=$?
tap $rc "make image builds an OCI archive for linux/amd64 and linux/arm64 ($(($(date +%s) - start)) s)"
[ $rc -ne 0 ] && { sed 's/^/#   /' "$TW_TMP/image.log"; done_testing; exit 1; }
sed 's/^/# /' "$TW_TMP/image.log"

# ---- the archive: an index of two platforms -------------------------------------------------
oci=$TW_TMP/oci
mkdir -p "$oci"
tar -xf "$archive" -C "$oci"
blob() { echo "$oci/blobs/sha256/${1#sha256:}"; }
expect_eq "index.json names one image index" "1 application/vnd.oci.image.index.v1+json" \
    "$(jq -r '"\(.manifests | length) \(.manifests[0].mediaType)"' "$oci/index.json")"
index_digest=$(jq -r '.manifests[0].digest' "$oci/index.json")
index=$(blob "$index_digest")
expect_eq "the index lists linux/amd64 and linux/arm64 (v8)" "linux/amd64/ linux/arm64/v8" \
    "$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)/\(.variant // "")"] | join(" ")' "$index")"
expect_eq "the index digest is the one make image reported" "$index_digest" \
    "$(jq -r .index "${archive%.tar}.json")"

# ---- reproducible: a second build from a copy at another path --------------------------------
copy=$TW_TMP/elsewhere/topowire
mkdir -p "$copy"
(cd "$TW_ROOT" && tar --exclude=./build --exclude=./bin --exclude=./.git -cf - .) | tar -xf - -C "$copy"
start=$(date +%s)
TW_IMAGE=$name TW_IMAGE_ARCHIVE=$TW_TMP/again.tar "$copy/mk/image.sh" >"$TW_TMP/again.log" 2>&1
tap $? "a clean build from a copy of the tree at another path ($(($(date +%s) - start)) s)"
cmp -s "$archive" "$TW_TMP/again.tar"
tap $? "... gives a byte-identical archive (sha256 $(sha256sum <"$archive" | cut -c1-16)…, index $index_digest)"
rm -rf "$copy"

# ---- per platform, from the archive's own layer --------------------------------------------
start_kube

# run ARCH ROOT PROGRAM ARGS...: runs a program of the image with the image's own libraries.
run() {
    local arch=$1 root=$2 prog=$3; shift 3
    case $arch in
    amd64) "$root/lib64/ld-linux-x86-64.so.2" --inhibit-cache \
        --library-path "$root/usr/lib/x86_64-linux-gnu" "$root/usr/local/bin/$prog" "$@" ;;
    arm64) "$QEMU" -L "$root" "$root/usr/local/bin/$prog" "$@" ;;
    esac
}

# start_serve ARCH ROOT LOG: the image's topowire-webhook serve; sets PORT and SERVE_PID.
start_serve() {
    local arch=$1 root=$2 log=$3 i=0
    bg run "$arch" "$root" topowire-webhook serve --binding=false --listen 127.0.0.1:0 \
        --metrics-listen "" --tls-cert-file "$TW_TMP/certs-$arch/tls.crt" \
        --tls-key-file "$TW_TMP/certs-$arch/tls.key" --init-image "$name" --log-format json >"$log" 2>&1
    SERVE_PID=$BG_PID
    until grep -q '"msg":"serving"' "$log" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$SERVE_PID" 2>/dev/null; then
            sed 's/^/#   /' "$log"; return 1
        fi
        sleep 0.05
    done
    PORT=$(grep '"msg":"serving"' "$log" | jq -r .port)
}

declare -A machine=([amd64]="Advanced Micro Devices X86-64" [arm64]=AArch64)
declare -A triplet=([amd64]=x86_64-linux-gnu [arm64]=aarch64-linux-gnu)
for arch in amd64 arm64; do
    manifest_digest=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$index")
    manifest=$(blob "$manifest_digest")
    config=$(blob "$(jq -r .config.digest "$manifest")")
    layer_digest=$(jq -r '.layers[0].digest' "$manifest")
    compressed=$(stat -c %s "$(blob "$layer_digest")")
    root=$TW_TMP/rootfs-$arch
    mkdir -p "$root"
    tar -xzf "$(blob "$layer_digest")" -C "$root"
    unpacked=$(jq -r --arg a "$arch" '.platforms[$a].unpacked' "${archive%.tar}.json")
    [ "$compressed" -le 10000000 ]
    tap $? "linux/$arch: compressed layer $compressed bytes <= 10 MB (unpacked $unpacked bytes)"
    expect_eq "linux/$arch: config says $arch, user 65532, entrypoint topowire-init, licence label" \
        "$arch 65532:65532 /usr/local/bin/topowire-init Apache-2.0 $TW_COMMIT" \
        "$(jq -r '"\(.architecture) \(.config.User) \(.config.Entrypoint[0]) \(.config.Labels["org.opencontainers.image.licenses"]) \(.config.Labels["org.opencontainers.image.revision"])"' "$config")"
    expect_eq "linux/$arch: the programs are $arch ELF files" "${machine[$arch]} ${machine[$arch]}" \
        "$(for p in topowire-init topowire-webhook; do
            readelf -h "$root/usr/local/bin/$p" | sed -n 's/ *Machine: *//p'
        done | xargs)"
    hits=$(grep -a -l -F "$TW_ROOT" "$root/usr/local/bin/"* 2>/dev/null | wc -l)
    expect_eq "linux/$arch: no build path in the programs" 0 "$hits"

    # Licences, status entries and the SBOM, against the shared objects actually shipped.
    status=$root/var/lib/dpkg/status.d
    bad=""
    for f in "$root/usr/lib/${triplet[$arch]}"/*; do
        [ -L "$f" ] && continue
        n=${f##*/}
        pkg=$(dpkg-query -S "/usr/lib/${triplet[$arch]}/$n" "/lib/${triplet[$arch]}/$n" 2>/dev/null |
            sed -n '1s/: .*//p')
        p=${pkg%%:*}
        v=$(dpkg-query -W -f='${Version}' "$p:$arch" 2>/dev/null)
        if [ -z "$pkg" ] || [ ! -s "$root/usr/share/doc/$p/copyright" ] ||
            [ "$(sed -n 's/^Version: //p' "$status/$p" 2>/dev/null)" != "$v" ] ||
            [ "$(sed -n 's/^Architecture: //p' "$status/$p" 2>/dev/null)" != "$arch" ]; then
            bad="$bad $n($pkg)"
        fi
    done
    expect_eq "linux/$arch: every shared object's package has its copyright and a status entry for $arch" "" "$bad"
    missing=$(cat "$root"/usr/share/doc/*/copyright | grep -o '/usr/share/common-licenses/[A-Za-z0-9.+_-]*[A-Za-z0-9]' |
        sort -u | while read -r t; do [ -s "$root$t" ] || echo "$t"; done | xargs)
    expect_eq "linux/$arch: every licence text a copyright file refers to is there" "" "$missing"
    cmp -s "$TW_ROOT/LICENSE" "$root/usr/share/doc/topowire/LICENSE" &&
        grep -q 'Apache License' "$root/usr/share/doc/topowire/LICENSE"
    tap $? "linux/$arch: topowire's own LICENSE (Apache-2.0) is in /usr/share/doc/topowire"
    sbom=$root/usr/share/doc/topowire/topowire.spdx.json
    cmp -s "$sbom" "${archive%.tar}-$arch.spdx.json"
    tap $? "linux/$arch: the SBOM in the image is the one beside the archive"
    expect_eq "linux/$arch: SPDX 2.3 describing topowire $version at this commit" \
        "SPDX-2.3 topowire $version git+https://github.com/topowire/topowire@$TW_COMMIT" \
        "$(jq -r '.spdxVersion as $v | .packages[] | select(.SPDXID == "SPDXRef-topowire") |
            "\($v) \(.name) \(.versionInfo) \(.downloadLocation)"' "$sbom")"
    want=$(for s in "$status"/*; do
        p=$(sed -n 's/^Package: //p' "$s") v=$(sed -n 's/^Version: //p' "$s") a=$(sed -n 's/^Architecture: //p' "$s")
        echo "$p $v pkg:deb/debian/$p@$v?arch=$a&distro=debian-12"
    done | sort)
    have=$(jq -r '.packages[] | select(.SPDXID != "SPDXRef-topowire") |
        "\(.name) \(.versionInfo) \(.externalRefs[0].referenceLocator)"' "$sbom" | sort)
    expect_eq "linux/$arch: the SBOM lists every status entry ($(wc -l <<<"$want")) with its version and purl" "$want" "$have"
    expect_eq "linux/$arch: topowire DEPENDS_ON each Debian package" "$(wc -l <<<"$want")" \
        "$(jq '[.relationships[] | select(.spdxElementId == "SPDXRef-topowire" and .relationshipType == "DEPENDS_ON")] | length' "$sbom")"

    if [ "$arch" = arm64 ] && ! command -v "$QEMU" >/dev/null 2>&1; then
        for t in "topowire-init writes the rack from the API server" "topowire-webhook serve answers an AdmissionReview"; do
            skip "linux/$arch: $t" "$QEMU is not installed (Debian package qemu-user-static; mk/deps.sh image installs it)"
        done
        continue
    fi
    via=$([ "$arch" = arm64 ] && echo "under qemu-aarch64-static" || echo "through the image's loader")
    out=$TW_TMP/out-$arch
    mkdir -p "$out"
    before=$(standin_requests "$KUBE_URL")
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KUBE_PORT \
        run "$arch" "$root" topowire-init --sources kubernetes --rack zone-id --node "$NODE" \
        --token-file "$KUBE_TOKEN_FILE" --ca-file "$KUBE_CA" --out-dir "$out" >"$TW_TMP/init-$arch.log" 2>&1
    rc=$?
    [ $rc -ne 0 ] && sed 's/^/#   /' "$TW_TMP/init-$arch.log"
    expect_eq "linux/$arch: topowire-init $via exits 0 and writes the rack from the API server" \
        "0 client.rack=use1-az4" "$rc $(cat "$out/rack.properties" 2>/dev/null)"
    after=$(standin_requests "$KUBE_URL")
    [ "$after" -gt "$before" ]
    tap $? "linux/$arch: ... the API server saw its request ($before -> $after)"

    mkdir -p "$TW_TMP/certs-$arch"
    run "$arch" "$root" topowire-webhook certgen --out-dir "$TW_TMP/certs-$arch" >/dev/null 2>&1
    tap $? "linux/$arch: topowire-webhook certgen $via"
    if start_serve "$arch" "$root" "$TW_TMP/serve-$arch.log"; then
        resp=$(curl -sS --max-time 30 --cacert "$TW_TMP/certs-$arch/ca.crt" \
            --resolve "topowire-webhook.topowire-system.svc:$PORT:127.0.0.1" -H 'Content-Type: application/json' \
            --data-binary @"$FIX/pod-create-spark-executor.json" \
            "https://topowire-webhook.topowire-system.svc:$PORT/mutate/pods")
        expect_eq "linux/$arch: topowire-webhook serve $via answers an AdmissionReview with a patch" \
            "$(jq -r .request.uid "$FIX/pod-create-spark-executor.json") true JSONPatch" \
            "$(jq -r '"\(.response.uid) \(.response.allowed) \(.response.patchType)"' <<<"$resp" 2>/dev/null)"
        kill "$SERVE_PID" 2>/dev/null
    else
        tap 1 "linux/$arch: topowire-webhook serve $via starts"
    fi
done

# ---- a registry on loopback, and podman pulling from it ---------------------------------------
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
started=1
for attempt in 1 2 3; do
    REG_PORT=$(free_port)
    cat >"$TW_TMP/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $TW_TMP/registry}}
http: {addr: 127.0.0.1:$REG_PORT}
EOF
    bg docker-registry serve "$TW_TMP/registry.yml" >"$TW_TMP/registry-$attempt.log" 2>&1
    REG_PID=$BG_PID
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$REG_PORT/v2/" && { started=0; break; }
        kill -0 "$REG_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ $started = 0 ] && break
    kill "$REG_PID" 2>/dev/null
done
tap $started "docker-registry serves on 127.0.0.1:$REG_PORT"
ref=127.0.0.1:$REG_PORT/topowire:$version
skopeo copy --all --quiet --dest-tls-verify=false "oci-archive:$archive" "docker://$ref" >"$TW_TMP/copy.log" 2>&1
rc=$?
tap $rc "skopeo copy --all pushes the index into the registry"
[ $rc -ne 0 ] && sed 's/^/#   /' "$TW_TMP/copy.log"
expect_eq "the registry's index has the local digest" "$index_digest" \
    "sha256:$(skopeo inspect --raw --tls-verify=false "docker://$ref" 2>/dev/null | sha256sum | cut -d' ' -f1)"
for arch in amd64 arm64; do
    want=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$index")
    expect_eq "linux/$arch: the registry holds its manifest under the local digest" "$want" \
        "sha256:$(skopeo inspect --raw --tls-verify=false "docker://${ref%:*}@$want" 2>/dev/null | sha256sum | cut -d' ' -f1)"
    expect_eq "linux/$arch: read back from the registry by platform: its architecture and layer" \
        "$arch $(jq -r '.layers[0].digest' "$(blob "$want")")" \
        "$(skopeo inspect --tls-verify=false --override-os linux --override-arch "$arch" "docker://$ref" 2>/dev/null |
            jq -r '"\(.Architecture) \(.Layers[0])"')"
done

"${PODMAN[@]}" pull -q --tls-verify=false "$ref" >"$TW_TMP/pull.log" 2>&1
tap $? "podman pulls the image from the registry"
expect_eq "podman chose linux/amd64, which runs as the non-root user" "amd64 65532:65532" \
    "$("${PODMAN[@]}" image inspect --format '{{.Architecture}} {{.Config.User}}' "$ref" 2>/dev/null)"
expect_eq "topowire-init starts in the container" "topowire-init $version" \
    "$("${PODMAN[@]}" "${RUN[@]}" "$ref" --version 2>&1)"
out=$TW_TMP/out
mkdir -p "$out"
chmod 0777 "$out"
"${PODMAN[@]}" "${RUN[@]}" \
    -e NODE_NAME=$NODE \
    -e KUBERNETES_SERVICE_HOST=127.0.0.1 -e KUBERNETES_SERVICE_PORT="$KUBE_PORT" \
    -v "$KUBE_TOKEN_FILE:/var/run/secrets/kubernetes.io/serviceaccount/token:ro" \
    -v "$KUBE_CA:/var/run/secrets/kubernetes.io/serviceaccount/ca.crt:ro" \
    -v "$out:/etc/topowire" \
    --read-only \
    "$ref" --sources kubernetes --rack zone-id >"$TW_TMP/run.log" 2>&1
rc=$?
[ $rc -ne 0 ] && sed 's/^/#   /' "$TW_TMP/run.log"
expect_eq "in the container, topowire-init writes the rack from the API server, as user 65532" \
    "0 client.rack=use1-az4 65532" "$rc $(cat "$out/rack.properties" 2>/dev/null) $(stat -c %u "$out/rack.properties" 2>/dev/null)"
"${PODMAN[@]}" rmi -f "$ref" >/dev/null 2>&1
kill "$REG_PID" 2>/dev/null
wait "$REG_PID" 2>/dev/null
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$REG_PORT/v2/"
expect_eq "the registry is stopped at the end" 7 $?
done_testing
