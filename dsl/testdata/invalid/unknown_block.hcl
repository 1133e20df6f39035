image "app" { rootfs = "./rootfs" }

contaner "web" {
  image = image.app.ref
}

service "api" {}
