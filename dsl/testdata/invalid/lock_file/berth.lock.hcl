image "registry.example.com/team/app:1.4" {
  digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
}

image "registry.example.com/team/app:1.4" {
  digest = "sha256:1111111111111111111111111111111111111111111111111111111111111112"
}

image "registry.example.com/team/api:1" {
  digest = "sha256:3f1a"
}

image "registry.example.com/team/web:2" {
  digest = "sha256:${var.x}"
}

image "registry.example.com/team/db@sha256:2222222222222222222222222222222222222222222222222222222222222222" {
  digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
}

image "Not A Reference" {
  digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
}

image "registry.example.com/team/cache:3" {
}

container "stray" {}
