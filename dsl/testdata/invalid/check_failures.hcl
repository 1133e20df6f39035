image "none" {}

image "both" {
  archive = "./app.tar"
  rootfs  = "./rootfs"
}

image "archived" {
  archive = "./app.tar"
  env     = { A = "1" }
}

container "web" {
  image = "busybox"
  mount {
    target = "/data"
  }
  mount {
    target = "/cache"
    volume = "cache"
    bind   = "./cache"
  }
}
