variable "replicas" {
  default = 2
}

image "app" {
  rootfs = "../rootfs-v1"
}

container "app" {
  count   = var.replicas
  image   = image.app.ref
  env     = { INDEX = tostring(count.index) }
  restart = "always"
}

volume "cache" {
  for_each = toset(["eu", "us"])
  labels   = { region = each.key }
}
