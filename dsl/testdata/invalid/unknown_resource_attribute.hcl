image "app" { rootfs = "./rootfs" }

container "db" {
  image = image.app.ref
}

container "web" {
  image    = container.db.imag
  hostname = image.app.digets
}
