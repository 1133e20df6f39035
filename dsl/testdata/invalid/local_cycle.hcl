locals {
  a = local.b
  b = "${local.c}-x"
  c = local.a
}

container "web" {
  image    = "busybox"
  hostname = local.a
}
