image "app" { rootfs = "./rootfs" }

container "web" {
  imag   = image.app.ref
  memory = "256M"
}
