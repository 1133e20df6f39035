#!/usr/bin/env python3
"""Rewrite a docker save archive of Docker <= 24 (the legacy layout) in the
layout Docker 25 and later write (an OCI image layout that also carries
manifest.json and repositories), as moby's image/tarexport/save.go does:

  blobs/sha256/<diff id>    each layer tar, uncompressed, named by its digest
  blobs/sha256/<config>     the image config, byte for byte
  blobs/sha256/<manifest>   an OCI image manifest naming them
  index.json                the manifest, annotated io.containerd.image.name
                            (docker.io/NAME:TAG) and
                            org.opencontainers.image.ref.name (TAG)
  oci-layout, manifest.json (Config and Layers as blobs/sha256/... paths),
  repositories

Usage: make-docker25.py LEGACY.tar OUT.tar   (python3, standard library only)
"""
import hashlib, io, json, sys, tarfile

src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t:
    files = {m.name.lstrip("./"): t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
manifest = json.loads(files["manifest.json"])
blobs, index, docker_manifest, repositories = {}, [], [], {}

def put(data):
    h = hashlib.sha256(data).hexdigest()
    blobs[h] = data
    return h

for image in manifest:
    config = files[image["Config"]]
    config_hex = put(config)
    layers = []
    for path in image["Layers"]:
        data = files[path]
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": "sha256:" + put(data), "size": len(data)})
    oci_manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + config_hex, "size": len(config)},
        "layers": layers,
    }, separators=(",", ":")).encode()
    manifest_hex = put(oci_manifest)
    for tag in image["RepoTags"]:
        repo, _, version = tag.rpartition(":")
        full = repo if "/" in repo.split("/")[0] and "." in repo.split("/")[0] else "docker.io/" + (repo if "/" in repo else "library/" + repo)
        index.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "digest": "sha256:" + manifest_hex, "size": len(oci_manifest),
                      "annotations": {"io.containerd.image.name": full + ":" + version,
                                      "org.opencontainers.image.ref.name": version}})
        repositories.setdefault(repo, {})[version] = layers[-1]["digest"].split(":")[1]
    docker_manifest.append({"Config": "blobs/sha256/" + config_hex, "RepoTags": image["RepoTags"],
                            "Layers": ["blobs/sha256/" + l["digest"].split(":")[1] for l in layers]})

out = {
    "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
    "index.json": json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                              "manifests": index}, separators=(",", ":")).encode(),
    "manifest.json": json.dumps(docker_manifest, separators=(",", ":")).encode(),
    "repositories": json.dumps(repositories, separators=(",", ":")).encode(),
}
with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data=None):
        info = tarfile.TarInfo(name)
        if data is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        else:
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    add("blobs")
    add("blobs/sha256")
    for h in sorted(blobs):
        add("blobs/sha256/" + h, blobs[h])
    for name in ["index.json", "manifest.json", "oci-layout", "repositories"]:
        add(name, out[name])
