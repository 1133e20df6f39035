image "app" {
  rootfs = "./rootfs"
  ref    = "app@sha256:0000"
}

container "web" {
  image      = image.app.ref
  ip_address = "10.0.0.2"
}

volume "data" {
  path = "/srv/data"
}
