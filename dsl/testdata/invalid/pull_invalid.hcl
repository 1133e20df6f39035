image "url" {
  pull = "http://registry.example.com/app:1"
}

image "upper" {
  pull = "registry.example.com/App:1"
}

image "two_sources" {
  pull   = "registry.example.com/app:1"
  rootfs = "./rootfs"
}

image "with_command" {
  pull    = "registry.example.com/app:1"
  command = ["/app"]
}

image "pinned_by_hand" {
  pull        = "registry.example.com/app:1"
  repo_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
}
